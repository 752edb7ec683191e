"""Decoding benchmarks: dkp's reader against a full decode, decord, and its own least work.

Two baselines decode every frame from the start up to the last wanted one: ``mmaction2`` as
MMAction2's ``PyAVDecode(mode="accurate")`` does (every frame converted to RGB, the wanted
ones kept, then resized), and ``full``, the most favourable version of it (only the wanted
frames converted, resized inside swscale). All decoders run one thread.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from benchmarks.timing import best, interleaved, ratio
from dkp.data.decoding import FrameRequest, PyAVReader
from dkp.data.decoding.api import TIME_EPS

try:  # optional: compared only where it installs (pip install decord)
    import decord
except ImportError:  # pragma: no cover - depends on the machine
    decord = None


@dataclass(frozen=True)
class Facts:
    """What the packets and a sequential decode say about a video, for the least-work check."""

    pts: list[int]  # presentation order
    keyframes: list[int]  # indices into pts
    referenced: list[int]  # indices of frames a NONREF-skipping decode still outputs
    decode_order: list[int]  # indices into pts, in the order the demuxer gives the packets
    tb: float

    @property
    def times(self) -> np.ndarray:
        return (np.asarray(self.pts) - self.pts[0]) * self.tb


def facts(path: Path) -> Facts:
    """Packet order, keyframes and reference frames, cached next to the video."""
    cached = path.with_suffix(path.suffix + ".facts2.json")
    if cached.exists():
        return Facts(**json.loads(cached.read_text()))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.size]
        tb = float(stream.time_base)
    pts = sorted(p for p, _ in packets)
    where = {p: i for i, p in enumerate(pts)}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"
        referenced = sorted(where[f.pts] for f in container.decode(stream))
    keyframes = sorted(where[p] for p, key in packets if key)
    out = Facts(pts, keyframes, referenced, [where[p] for p, _ in packets], tb)
    cached.write_text(json.dumps(out.__dict__))
    return out


def uniform_times(duration: float, n: int) -> tuple[float, ...]:
    """The centres of n equal segments (evaluation-time adaptive sampling)."""
    return tuple(((np.arange(n) + 0.5) * duration / n).tolist())


def least_work(f: Facts, times: tuple[float, ...], skip_nonref: bool) -> set[int]:
    """Frames a decoder must decode: from the keyframe before each target through it in decode
    order (every frame a target references precedes it there), shared between targets."""
    targets = np.searchsorted(f.times, np.asarray(times) + TIME_EPS, side="right") - 1
    targets = np.clip(targets, 0, len(f.pts) - 1)
    keys = np.asarray(f.keyframes)
    place = {frame: i for i, frame in enumerate(f.decode_order)}
    needed: set[int] = set()
    for t in targets.tolist():
        key = int(keys[keys <= t].max())
        needed.update(f.decode_order[place[key] : place[t] + 1])
    if skip_nonref:
        needed &= set(f.referenced) | set(targets.tolist())
    return needed


def sequential_costs(path: Path) -> np.ndarray:
    """Seconds one one-thread sequential decode spends on each frame (presentation order),
    demuxing its packet and decoding it: what the frames cost when nothing is skipped or
    sought."""
    cost: dict[int, float] = {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        start = time.perf_counter()
        for packet in container.demux(stream):
            packet.decode()
            now = time.perf_counter()
            if packet.size:
                cost[packet.pts] = now - start
            start = now
    return np.asarray([cost[p] for p in sorted(cost)])


def per_frame_case(path: Path, f: Facts, cases: tuple[tuple[int, int], ...], reps: int) -> dict:
    """Per (n, size): a fresh reader's decode time (conversion switched off) over what a
    sequential decode spends on exactly the frames it decoded. Each repetition makes one
    sequential pass and each case's read, so that both see the same machine; either side's
    time is its least-disturbed repetition."""
    passes: list[np.ndarray] = []
    methods: dict[str, Callable[[], object]] = {
        "sequential": lambda: passes.append(sequential_costs(path))
    }
    for n, size in cases:
        request = [FrameRequest(case_times(f, n), size, size)]

        def read(request=request) -> None:
            reader = PyAVReader(threads=1, skip_nonref=True, index_dir=index_dir(path))
            reader.frames(path, request[0].times)  # decoded, not converted
            assert reader.stats.indexed_files == 0, "the index should have come from its file"

        methods[f"{n}x{size}"] = read
    store_index(path)
    t = interleaved(methods, reps)
    ratios = {}
    for n, size in cases:
        frames = sorted(least_work(f, case_times(f, n), True))
        sequential = min(float(costs[frames].sum()) for costs in passes)
        ratios[(n, size)] = best(t[f"{n}x{size}"]) / sequential
    return ratios


def case_times(f: Facts, n: int) -> tuple[float, ...]:
    """The times of an ``n``-frame case: uniformly spread over the whole video."""
    return uniform_times(float(f.times[-1]) + float(f.times[1] - f.times[0]), n)


def mmaction2_accurate(path: Path, times: tuple[float, ...], h: int, w: int) -> list[np.ndarray]:
    """MMAction2's PyAVDecode(mode="accurate"): every frame up to the last wanted one to RGB,
    the wanted ones picked by index, then resized (as its Resize step does, bilinear)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        fps = float(stream.average_rate)
        wanted = np.floor(np.asarray(times) * fps + TIME_EPS).astype(int)
        imgs = []
        for frame in container.decode(stream):
            if len(imgs) > wanted.max():
                break
            imgs.append(frame.to_rgb().to_ndarray())
    return [np.asarray(Image.fromarray(imgs[i]).resize((w, h), Image.BILINEAR)) for i in wanted]


def full_decode(path: Path, times: tuple[float, ...], h: int, w: int) -> list[np.ndarray]:
    """The baseline: decode from the start, keep (convert, resize) only the wanted frames."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_count = 1
        tb, first = float(stream.time_base), None
        wanted = sorted(times)
        out, prev = [], None
        for frame in container.decode(stream):
            first = frame.pts if first is None else first
            t = (frame.pts - first) * tb
            while wanted and t > wanted[0] + TIME_EPS:  # prev is shown at wanted[0]
                out.append(prev.to_ndarray(width=w, height=h, format="rgb24"))
                wanted.pop(0)
            if not wanted:
                break
            prev = frame
        out += [prev.to_ndarray(width=w, height=h, format="rgb24") for _ in wanted]
        return out


def decord_batch(path: Path, times: tuple[float, ...], h: int, w: int, fps: float) -> np.ndarray:
    """decord's VideoReader.get_batch for the same frames (indices from times at ``fps``)."""
    reader = decord.VideoReader(str(path), width=w, height=h, num_threads=1)
    idx = np.clip(np.floor(np.asarray(times) * fps + TIME_EPS), 0, len(reader) - 1)
    return reader.get_batch(idx.astype(int).tolist()).asnumpy()


def index_dir(path: Path) -> Path:
    """Where the benchmark's readers keep packet indexes, as the data configs have them do."""
    return path.parent / "index"


def store_index(path: Path) -> None:
    """Make sure the packet index of ``path`` is on disk, as after a video's first read."""
    PyAVReader(index_dir=index_dir(path)).read(path, [FrameRequest((0.0,), 8, 8)])


def read_case(path: Path, f: Facts, n: int, size: int, reps: int) -> dict:
    """One (video, n frames, size) row: times, work and ratios of every method. Each read is a
    fresh reader's, with the video's packet index on disk (as in every epoch and run after a
    file's first read; :func:`index_case` times that one)."""
    times = case_times(f, n)
    request = [FrameRequest(times, size, size)]
    stats = {}

    def reader(skip: bool) -> Callable[[], object]:
        def run():
            r = PyAVReader(threads=1, skip_nonref=skip, index_dir=index_dir(path))
            r.read(path, request)
            assert r.stats.indexed_files == 0, "the index should have come from its file"
            stats[skip] = r.stats

        return run

    methods = {
        "mmaction2": lambda: mmaction2_accurate(path, times, size, size),
        "full": lambda: full_decode(path, times, size, size),
        "reader": reader(False),
        "reader_skip": reader(True),
    }
    fps = 1.0 / float(f.times[1] - f.times[0])
    if decord is not None:
        methods["decord"] = lambda: decord_batch(path, times, size, size, fps)
    store_index(path)
    # The whole-video decodes take seconds, steady to a few %: one run each is enough.
    t = interleaved(methods, reps, once=("mmaction2", "full"))
    plain, skip = stats[False], stats[True]
    least, least_skip = least_work(f, times, False), least_work(f, times, True)
    row = {
        "n": n,
        "size": size,
        "decoded": plain.decoded_frames,
        "min": len(least),
        "decoded_skip": skip.decoded_frames,
        "min_skip": len(least_skip),
        "keyframes_skip": len(least_skip & set(f.keyframes)),
        "file_reads": skip.file_reads == 1,
        "frames_full": int(np.searchsorted(f.times, max(times) + TIME_EPS, side="right")),
        "seconds": {k: best(v) for k, v in t.items()},
        "x_mmaction2": ratio(t, "mmaction2", "reader_skip"),
        "x_full": ratio(t, "full", "reader"),
        "x_full_skip": ratio(t, "full", "reader_skip"),
        "skip_gain": ratio(t, "reader", "reader_skip"),
    }
    if decord is not None:
        row["x_decord"] = ratio(t, "decord", "reader_skip")
    return row


def conversions_case(path: Path, f: Facts) -> dict:
    """Colour conversion and resizing only for kept frames: conversions vs decoded frames."""
    duration = float(f.times[-1])
    requests = [
        FrameRequest(uniform_times(duration, 20), 112, 112),
        FrameRequest(uniform_times(duration, 5), 224, 224),
    ]
    r = PyAVReader(skip_nonref=True)
    r.read(path, requests)
    return {"conversions": r.stats.conversions, "kept": 25, "decoded": r.stats.decoded_frames}


def student_teacher_case(path: Path, f: Facts, reps: int) -> dict:
    """Student (20 @ 112) and teacher (5 @ 224) frames: one read of both vs two reads."""
    duration = float(f.times[-1])
    student = FrameRequest(uniform_times(duration, 20), 112, 112)
    teacher = FrameRequest(uniform_times(duration, 5), 224, 224)

    def reader() -> PyAVReader:
        return PyAVReader(skip_nonref=True, index_dir=index_dir(path))

    def one() -> None:
        reader().read(path, [student, teacher])

    def two() -> None:
        reader().read(path, [student])
        reader().read(path, [teacher])

    t = interleaved({"one_read": one, "two_reads": two}, reps)
    return {"x_two_reads": ratio(t, "two_reads", "one_read")}


def index_case(path: Path, f: Facts, reps: int) -> dict:
    """What a fresh reader's 8-frame read spends getting the packet index: by a demux pass (the
    file's first read ever) and from its stored file, as shares of the read."""
    request = [FrameRequest(uniform_times(float(f.times[-1]), 8), 112, 112)]
    stored = index_dir(path)
    store_index(path)
    in_memory = PyAVReader(skip_nonref=True)
    in_memory.read(path, [FrameRequest((0.0,), 8, 8)])
    t = interleaved(
        {
            "demux": lambda: PyAVReader(skip_nonref=True).read(path, request),
            "file": lambda: PyAVReader(skip_nonref=True, index_dir=stored).read(path, request),
            "memory": lambda: in_memory.read(path, request),
        },
        reps,
    )
    return {
        "index_share": 1.0 - 1.0 / ratio(t, "demux", "memory"),
        "index_file_share": 1.0 - 1.0 / ratio(t, "file", "memory"),
    }


_MEMORY_SCRIPT = """
import resource, sys, tracemalloc
from pathlib import Path
def rss_kb(field):
    line = next(x for x in open("/proc/self/status") if x.startswith(field))
    return int(line.split()[1])
from benchmarks.decoding import full_decode, uniform_times
from dkp.data.decoding import FrameRequest, PyAVReader
path, method, n, size, duration = Path(sys.argv[1]), sys.argv[2], *map(int, sys.argv[3:6])
times = uniform_times(duration, n)
PyAVReader().read(path, [FrameRequest((0.0,), 8, 8)])  # load the codec libraries first
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
before = rss_kb("VmRSS:")
tracemalloc.start()
if method == "reader":
    PyAVReader(skip_nonref=True).read(path, [FrameRequest(times, size, size)])
else:
    full_decode(path, times, size, size)
peak = tracemalloc.get_traced_memory()[1]
after = rss_kb("VmHWM:")
print(peak, (after - before) * 1024)
"""


def memory_case(path: Path, method: str, n: int, size: int, duration: int) -> dict:
    """Peak numpy/Python memory (tracemalloc) and peak RSS growth of one read, in a fresh process.

    tracemalloc misses FFmpeg's own buffers (and arrays viewing them); the RSS growth has them.
    """
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(path), method, str(n), str(size), str(duration)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout.split()
    traced, rss = (int(v) for v in out[-2:])
    return {"traced_mb": traced / 2**20, "rss_growth_mb": rss / 2**20}
