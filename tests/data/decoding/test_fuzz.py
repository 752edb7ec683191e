"""Fuzzing: small videos with random bytes changed, cut, inserted or removed, and stored packet
indexes with random damage, read every way the reader reads. Each read returns the frames
asked for or raises VideoDecodeError, within a few seconds: no other exception, no hang."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dkp.data.decoding import FrameRequest, PyAVReader, VideoDecodeError, index_store
from dkp.data.decoding.packet_index import PacketIndex
from tests.data.decoding.corpus import write_video

SEEDS = {  # name: how to write it (12 frames, keyframes every 8, B-frames where the codec has them)
    "h264.mp4": lambda p: write_video(p, n=12),
    "h264_index_first.mp4": lambda p: write_video(
        p, n=12, muxer_options={"movflags": "+faststart"}
    ),
    "h264.mkv": lambda p: write_video(p, n=12),
    "mpeg4.avi": lambda p: write_video(p, n=12, codec="mpeg4", options={"bf": "2", "g": "8"}),
}
REQUESTS = [FrameRequest((0.0, 0.21, 0.3, 5.0), 8, 8), FrameRequest((0.45, -1.0), 4, 6)]
SECONDS = 20  # far beyond what a read of these files takes (a few ms)
FAST = settings(
    max_examples=15,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
LONG = settings(FAST, max_examples=300, derandomize=False)


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Fail with TimeoutError if the block runs longer than ``seconds`` (a hang)."""

    def expire(*_: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("fuzz_seeds")
    return {name: make(root / name).read_bytes() for name, make in SEEDS.items()}


#: One change to a file: (where, as a fraction of its length; what; a byte or a length).
changes = st.lists(
    st.tuples(
        st.floats(0, 1, exclude_max=True),
        st.sampled_from(["set", "set", "set", "insert", "delete", "cut"]),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=6,
)


def changed(data: bytes, edits: list[tuple[float, str, int]]) -> bytes:
    out = bytearray(data)
    for where, what, value in edits:
        at = int(where * len(out))
        if what == "set" and at < len(out):
            out[at] = value
        elif what == "insert":
            out[at:at] = bytes([value]) * (value % 17 + 1)
        elif what == "delete":
            del out[at : at + value % 33 + 1]
        elif what == "cut":
            del out[at:]
    return bytes(out)


names = itertools.count()


def read_every_way(path: Path, index_dir: Path) -> None:
    """Probe, a first read (the demuxer) and a later one (the stored index, file reads),
    with and without skipping: frames of the right shape, or VideoDecodeError."""
    for skip in (False, True):
        for _ in ("first read", "later read"):
            reader = PyAVReader(skip_nonref=skip, index_dir=index_dir, max_decoded_frames=500)
            try:
                reader.probe(path)
                outputs = reader.read(path, REQUESTS)
            except VideoDecodeError as err:
                assert err.path == str(path) and err.reason
                continue
            assert [o.shape for o in outputs] == [(4, 8, 8, 3), (2, 4, 6, 3)]


def fuzz_files(seeds: dict[str, bytes], root: Path, seed: str, edits: list) -> None:
    path = root / f"{next(names)}_{seed}"
    path.write_bytes(changed(seeds[seed], edits))
    with time_limit(SECONDS):
        read_every_way(path, root / "index")


@pytest.mark.parametrize("seed", sorted(SEEDS))
@FAST
@given(edits=changes)
def test_damaged_files_give_frames_or_a_named_problem(seeds, tmp_path, seed, edits):
    fuzz_files(seeds, tmp_path, seed, edits)


@pytest.mark.slow
@pytest.mark.parametrize("seed", sorted(SEEDS))
@LONG
@given(edits=changes)
def test_damaged_files_give_frames_or_a_named_problem_at_length(seeds, tmp_path, seed, edits):
    fuzz_files(seeds, tmp_path, seed, edits)


#: One change to a stored index: (which array, which element, new value (scaled), or cut).
index_changes = st.lists(
    st.tuples(
        st.integers(0, 100),
        st.floats(0, 1, exclude_max=True),
        st.sampled_from([0, 1, -1, 2, 7, 2**40, 2**62, -(2**62)]),
        st.booleans(),
    ),
    min_size=1,
    max_size=4,
)


def fuzz_index(seeds: dict[str, bytes], root: Path, seed: str, edits: list, raw: bytes) -> None:
    path = root / seed
    if not path.exists():
        path.write_bytes(seeds[seed])
    index_dir = root / "index"
    PyAVReader(index_dir=index_dir).read(path, REQUESTS)  # stores the index
    (stored,) = index_dir.glob("*.idx")
    arrays = {k: np.array(v) for k, v in index_store.decode(stored.read_bytes()).items()}
    for which, where, value, cut in edits:
        name = sorted(arrays)[which % len(arrays)]
        values = arrays[name].reshape(-1)
        if cut:
            arrays[name] = values[: int(where * values.size)]
        elif values.size:
            info = np.iinfo(values.dtype) if values.dtype.kind in "iu" else None
            new = np.clip(value, info.min, info.max) if info else value
            values[int(where * values.size)] = new
    data = index_store.encode(arrays)
    if raw:  # damage the file's bytes too
        data = data[: len(data) // 2] + raw + data[len(data) // 2 + len(raw) :]
    with suppress(ValueError):  # refused as a whole (the reader rebuilds it): nothing else
        PacketIndex.from_arrays(dict(index_store.decode(data)))
    stored.write_bytes(data)
    with time_limit(SECONDS):
        for skip in (False, True):
            try:
                outputs = PyAVReader(skip_nonref=skip, index_dir=index_dir).read(path, REQUESTS)
            except VideoDecodeError as err:
                assert err.path == str(path)
                continue
            assert [o.shape for o in outputs] == [(4, 8, 8, 3), (2, 4, 6, 3)]
    for leftover in index_dir.glob("*.idx"):
        leftover.unlink()


@pytest.mark.parametrize("seed", sorted(SEEDS))
@FAST
@given(edits=index_changes, raw=st.binary(max_size=4))
def test_damaged_index_files_are_refused_or_read_safely(seeds, tmp_path, seed, edits, raw):
    fuzz_index(seeds, tmp_path, seed, edits, raw)


@pytest.mark.slow
@pytest.mark.parametrize("seed", sorted(SEEDS))
@LONG
@given(edits=index_changes, raw=st.binary(max_size=4))
def test_damaged_index_files_are_refused_or_read_safely_at_length(
    seeds, tmp_path, seed, edits, raw
):
    fuzz_index(seeds, tmp_path, seed, edits, raw)
