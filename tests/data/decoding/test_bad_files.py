"""Bad and unusual videos: the reader gives the right frames or a VideoDecodeError naming the
file and the reason, and training, evaluation and prediction skip the bad ones and go on."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from dkp.cli.predict import main as predict_main
from dkp.data.decoding import FrameRequest, PyAVReader, VideoDecodeError
from dkp.runtime.jobs import run_job
from dkp.tasks.evaluate import evaluate
from dkp.tasks.train import train
from tests.conftest import compose_config
from tests.data.decoding.corpus import (
    BROKEN,
    H,
    W,
    cover_first,
    cut_in_packet,
    damage_packet,
    huge_resolution,
    lie_about_duration,
    make_broken,
    sequential,
    shown_at,
    write_video,
)

TIMES = (0.0, 0.3, 0.61, 0.95, 5.0)  # 5.0 s is past the end: the last frame is shown then


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_files_raise_naming_file_and_reason(tmp_path, name):
    path, phrase = make_broken(tmp_path)[name]
    reader = PyAVReader()
    for call in (lambda: reader.probe(path), lambda: reader.read(path, [FrameRequest((0,), 8, 8)])):
        with pytest.raises(VideoDecodeError) as caught:
            call()
        assert caught.value.path == str(path) and caught.value.reason
        assert str(caught.value) == f"{path}: {caught.value.reason}"
        assert phrase in caught.value.reason


UNUSUAL = {
    "one_frame.mp4": lambda p: write_video(p, n=1),
    "variable_rate.mp4": lambda p: write_video(
        p, n=12, pts_ms=[0, 17, 50, 90, 157, 277, 294, 334, 401, 521, 538, 578]
    ),
    "no_duration_in_header.mkv": lambda p: write_video(p, muxer_options={"live": "1"}),
    "rotated_90.mp4": lambda p: write_video(p, rotation=90),
    "vidéo d'été 日本.mp4": lambda p: write_video(p),
    "cut_short.mkv": lambda p: p.write_bytes(
        write_video(p, n=25).read_bytes()[: 2 * p.stat().st_size // 3]
    ),
}


@pytest.mark.parametrize("name", sorted(UNUSUAL))
def test_unusual_files_give_the_frames_a_full_decode_shows(tmp_path, name):
    path = tmp_path / name
    UNUSUAL[name](path)
    ref_times, ref_frames = sequential(path)
    (got,) = PyAVReader().read(path, [FrameRequest(TIMES, H, W)])
    for t, frame in zip(TIMES, got, strict=True):
        assert np.array_equal(frame, ref_frames[shown_at(ref_times, t)]), t
    info = PyAVReader().probe(path)
    assert (info.width, info.height) == (W, H)
    assert info.duration > 0


def test_header_without_duration_is_measured_from_the_packets(tmp_path):
    path = write_video(tmp_path / "live.mkv", n=25, muxer_options={"live": "1"})
    with av.open(str(path)) as container:
        assert container.duration is None
    assert PyAVReader().probe(path).duration == pytest.approx(1.0, abs=1e-9)
    assert PyAVReader().probe(write_video(tmp_path / "one.mp4", n=1)).duration == 0.04


def test_rotation_is_not_applied(tmp_path):
    """Frames come as stored (64 wide, 48 high) although the file asks for a 90 degree turn."""
    path = write_video(tmp_path / "rotated.mp4", rotation=90)
    with av.open(str(path)) as container:
        assert next(container.decode(video=0)).rotation == 90
    (got,) = PyAVReader().read(path, [FrameRequest((0.0,), H, W)])
    assert got.shape == (1, H, W, 3)
    assert np.array_equal(got[0], sequential(path)[1][0])
    info = PyAVReader().probe(path)
    assert (info.width, info.height) == (W, H)


def test_enormous_declared_resolution_is_refused_without_allocating(tmp_path):
    path = huge_resolution(tmp_path / "huge.y4m")  # 16000 x 16000: 384 MB a frame
    script = f"""
import resource
from dkp.data.decoding import FrameRequest, PyAVReader, VideoDecodeError
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    PyAVReader().read({str(path)!r}, [FrameRequest((0.0,), 8, 8)])
except VideoDecodeError as err:
    print(err)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    error, grown_mb = out.stdout.strip().splitlines()
    assert error == f"{path}: resolution 16000x16000 exceeds max_pixels=35389440"
    assert int(grown_mb) < 50


def test_max_duration_refuses_long_videos_by_their_packets(tmp_path):
    path = write_video(tmp_path / "two_seconds.mp4", n=50)
    live = write_video(tmp_path / "two_seconds.mkv", n=50, muxer_options={"live": "1"})
    reader = PyAVReader(max_duration=1.5)
    with pytest.raises(VideoDecodeError, match=r"two_seconds.mp4: packets run past max_duration"):
        reader.probe(path)
    with pytest.raises(VideoDecodeError, match=r"two_seconds.mkv: packets run past max_duration"):
        reader.read(live, [FrameRequest((0.0,), 8, 8)])  # stops demuxing at the limit
    assert reader.stats.decoded_frames == 0
    PyAVReader(max_duration=2.0).read(path, [FrameRequest((1.9,), 8, 8)])


def test_data_configs_set_the_reader_limits(tmp_path):
    for data in ("synthetic", "activitynet", "kinetics400", "ucf101", "hmdb51", "sthv2"):
        cfg = compose_config("train", [f"data={data}"], tmp_path)
        reader = cfg.data.reader
        assert (reader.max_pixels, reader.max_duration, reader.max_decoded_frames) == (
            8192 * 4320,
            7200.0,
            100000,
        ), data


# --- one real run with bad files mixed into the data --------------------------------------
BAD_FILES = {  # a copy of tiny_dataset: video id -> what its file is replaced with
    "training": ["zero_bytes.mp4", "not_a_video.mp4"],
    "validation": ["truncated.mp4"],
    "testing": ["not_a_video.mp4"],
}


@pytest.fixture(scope="module")
def dataset_with_bad_files(tiny_dataset, tmp_path_factory):
    """tiny_dataset with broken files for a few videos of each subset and one video whose id
    has spaces and non-ASCII letters; returns (root, {video id: broken file name})."""
    root = tmp_path_factory.mktemp("bad_files") / "data"
    shutil.copytree(tiny_dataset, root)
    ann_file = root / "activity_net.v1-3.min.json"
    ann = json.loads(ann_file.read_text())
    broken = make_broken(tmp_path_factory.mktemp("broken"))
    replaced = {}
    for subset, names in BAD_FILES.items():
        ids = sorted(v for v, e in ann["database"].items() if e["subset"] == subset)
        for video_id, name in zip(ids, names, strict=False):
            shutil.copyfile(broken[name][0], root / "videos" / f"v_{video_id}.mp4")
            replaced[video_id] = name
    first = sorted(v for v, e in ann["database"].items() if e["subset"] == "training")[-1]
    odd = "vidéo d'été 日本 1"
    ann["database"][odd] = ann["database"][first]
    shutil.copyfile(root / "videos" / f"v_{first}.mp4", root / "videos" / f"v_{odd}.mp4")
    ann_file.write_text(json.dumps(ann, ensure_ascii=False))
    return root, replaced


def test_train_eval_and_predict_skip_bad_files_and_name_them(dataset_with_bad_files, tmp_path):
    root, replaced = dataset_with_bad_files
    steps = ["trainer.max_epochs=1", "data.batch_size=6", "sampling.n_t=1", "sampling.ratio=1"]
    cfg = compose_config("train", ["experiment=teacher", *steps], tmp_path / "train", root)
    results = run_job(cfg, train)
    skipped = results.skipped_videos
    by_subset = {
        split: sorted(v for v, name in replaced.items() if subset_of(root, v) == subset)
        for split, subset in (("train", "training"), ("val", "validation"), ("test", "testing"))
    }
    for split, ids in by_subset.items():
        assert sorted(skipped[split]) == ids, split
        for video_id in ids:
            assert f"v_{video_id}.mp4: " in skipped[split][video_id]
    assert 0.0 <= results.metrics["test/mAP"] <= 1.0
    on_disk = json.loads((tmp_path / "train" / "results.json").read_text())
    assert on_disk["skipped_videos"] == skipped

    cfg = compose_config(
        "eval",
        [f"ckpt_path={results.last_checkpoint}", "split=val", "sampling.n_t=1"],
        tmp_path / "eval",
        root,
    )
    scored = run_job(cfg, evaluate)
    assert sorted(scored.skipped_videos["val"]) == by_subset["val"]
    assert scored.metrics["val/mAP"] == pytest.approx(results.metrics["val/mAP"], abs=1e-6)

    bad = root / "videos" / f"v_{by_subset['val'][0]}.mp4"
    good = root / "videos" / "v_vidéo d'été 日本 1.mp4"
    assert predict_main(["--ckpt", results.last_checkpoint, str(bad), str(good)]) == 1


def subset_of(root: Path, video_id: str) -> str:
    ann = json.loads((root / "activity_net.v1-3.min.json").read_text())
    return ann["database"][video_id]["subset"]


# --- files made outside the project: the reader names what is wrong, or reads them exactly --
def assert_shows(reader, path, expected):
    """``reader`` gives, one read per time, the frame ``expected`` maps each time to."""
    for t, frame in expected.items():
        (got,) = reader.read(path, [FrameRequest((t,), H, W)])
        assert np.array_equal(got[0], frame), t


def test_a_cover_picture_stream_first_is_passed_over_for_the_video(tmp_path):
    path = cover_first(write_video(tmp_path / "downloaded.mp4", cover=True))
    with av.open(str(path)) as container:
        assert [s.codec_context.name for s in container.streams.video] == ["mjpeg", "h264"]
    ref_times, ref_frames = sequential(path)
    expected = {t: ref_frames[shown_at(ref_times, t)] for t in (0.0, 0.41, 0.99, 3.0)}
    for reader in (PyAVReader(), PyAVReader(stream=1, index_dir=tmp_path / "index")):
        assert_shows(reader, path, expected)
        assert reader.probe(path).num_frames == 25
    with pytest.raises(VideoDecodeError, match=r"downloaded.mp4: stream 2 is not a video stream"):
        PyAVReader(stream=2).read(path, [FrameRequest((0.0,), H, W)])
    with pytest.raises(VideoDecodeError, match="downloaded.mp4"):  # the cover, asked for
        PyAVReader(stream=0).read(path, [FrameRequest((0.0,), H, W)])
    with pytest.raises(ValueError, match="stream must be a stream index"):
        PyAVReader(stream=-1)


def test_a_header_that_lies_about_the_duration_is_named_and_the_frames_span_used(tmp_path, caplog):
    path = lie_about_duration(write_video(tmp_path / "ten_hours.mkv"))  # 1 s; says 10 h
    info = PyAVReader().probe(path)
    assert (info.duration, info.num_frames) == (pytest.approx(1.0, abs=1e-9), 25)
    assert caplog.messages == [
        f"{path}: the header gives a duration of 36000.000 s but the frames span 1.000 s; "
        "using the frames' span"
    ]
    ref_times, ref_frames = sequential(path)
    assert_shows(PyAVReader(), path, {0.5: ref_frames[12], 0.99: ref_frames[24]})


@pytest.mark.parametrize("skip_nonref", [False, True])
def test_a_file_cut_in_its_media_data_gives_every_whole_frame(tmp_path, caplog, skip_nonref):
    whole = write_video(tmp_path / "whole.mp4", n=25)
    _, ref_frames = sequential(whole)
    kept = 17  # its index first (faststart), cut in packet 17: frames 0-16 are whole
    path = write_video(tmp_path / "cut.mp4", muxer_options={"movflags": "+faststart"})
    cut_in_packet(path, kept)
    times = [i * 0.04 for i in range(25)] + [0.67, 5.0]
    expected = {
        t: ref_frames[min(shown_at([i * 0.04 for i in range(25)], t), kept - 1)] for t in times
    }
    index_dir = tmp_path / "index"
    for _ in ("first read", "later read"):
        reader = PyAVReader(skip_nonref=skip_nonref, index_dir=index_dir)
        assert_shows(reader, path, expected)
        assert reader.stats.missing_frames == 0
    info = PyAVReader().probe(path)
    assert (info.num_frames, info.duration) == (kept, pytest.approx(0.68, abs=1e-9))
    # Said once per index built: by the first read and by the probe, not by the later read.
    warning = f"{path}: the header gives a duration of 1.000 s but the frames span 0.680 s"
    assert caplog.text.count(warning) == 2


@pytest.mark.parametrize("skip_nonref", [False, True])
def test_a_frame_that_cannot_be_decoded_gets_the_one_before_with_a_warning(
    tmp_path, caplog, skip_nonref
):
    _, ref_frames = sequential(write_video(tmp_path / "whole.mp4", n=25))
    path = damage_packet(write_video(tmp_path / "damaged.mp4"), 10)  # keys: 0, 8, 16
    index_dir = tmp_path / "index"
    for _ in ("first read", "later read"):
        reader = PyAVReader(skip_nonref=skip_nonref, index_dir=index_dir)
        caplog.clear()
        # Frame 10 is gone: a full decode shows frame 9 until 11; 11-15 refer to it.
        expected = {
            0.36: ref_frames[9],
            0.4: ref_frames[9],
            0.64: ref_frames[16],
            0.9: ref_frames[22],
        }
        assert_shows(reader, path, expected)
        assert reader.stats.missing_frames == 1
        assert caplog.messages == [
            f"{path}: cannot decode the frames at 0.400 s (damaged data); the frame shown "
            "before each is returned in its place"
        ]
