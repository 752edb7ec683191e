"""The check names every bad video with its reason, reruns only what changed, and the data
module leaves the bad videos out, naming each; a prepared copy is read in place of the
originals."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from fractions import Fraction

import pytest

from dkp.data.decoding import PyAVReader
from dkp.data.preparation import check as check_module
from dkp.data.preparation.check import check_dataset, measure
from dkp.data.preparation.listing import DatasetListing, ListedVideo
from dkp.data.preparation.manifest import RenditionSettings
from dkp.data.preparation.prepare import prepare_dataset
from dkp.data.preparation.report import CheckReport, judge
from tests.data.decoding.corpus import audio_only, cut_in_packet, damage_packet, write_video
from tests.data.preparation.numbered import write_numbered


def listing_of(paths: dict[str, float | None], tmp_path, missing=()) -> DatasetListing:
    videos = {str(p): ListedVideo(str(p), [os.path.basename(p)], d) for p, d in paths.items()}
    reader = PyAVReader(skip_nonref=True, index_dir=tmp_path / "index")
    return DatasetListing(videos, dict.fromkeys(missing, "train"), reader, str(tmp_path))


@pytest.fixture
def files(tmp_path):
    """name -> (path, annotated duration, the problem kinds the check must name, or None)."""
    x264 = {"x264-params": "keyint=5:min-keyint=5:scenecut=0:bframes=0", "crf": "12"}
    made = {
        "good.mp4": (write_video(tmp_path / "good.mp4"), 1.0, None),
        "empty.mp4": (tmp_path / "empty.mp4", 1.0, "zero_length"),
        "junk.mp4": (tmp_path / "junk.mp4", 1.0, "unreadable"),
        "sound.mkv": (audio_only(tmp_path / "sound.mkv"), 1.0, "no_video_stream"),
        "cut.mkv": (write_video(tmp_path / "cut.mkv", n=50), 2.0, "truncated header_duration"),
        "damaged.mp4": (
            write_video(tmp_path / "damaged.mp4", n=50, options=x264),
            2.0,
            "truncated",
        ),
        "yuv444.mkv": (None, 1.0, "pixel_format"),
        "long_gop.mp4": (None, 4.0, "sparse_keyframes"),
    }
    made["empty.mp4"][0].write_bytes(b"")
    made["junk.mp4"][0].write_text("<html>This video is unavailable</html>" * 30)
    cut_in_packet(made["cut.mkv"][0], 20)
    damage_packet(made["damaged.mp4"][0], 49)  # the last frame: no decoding past 1.8 s
    yuv444 = write_numbered(
        tmp_path / "yuv444.mkv",
        list(range(25)),
        Fraction(1, 25),
        options={"crf": "20"},
        pix_fmt="yuv444p",
    )
    made["yuv444.mkv"] = (yuv444, 1.0, "pixel_format")
    long_gop = {"x264-params": "keyint=100:min-keyint=100:scenecut=0", "crf": "30"}
    made["long_gop.mp4"] = (
        write_numbered(
            tmp_path / "long_gop.mp4", list(range(100)), Fraction(1, 25), options=long_gop
        ),
        4.0,
        "sparse_keyframes",
    )
    return made


def test_every_bad_video_is_named_with_its_reason(files, tmp_path, monkeypatch):
    monkeypatch.setattr("dkp.data.preparation.report.SPARSE_KEYFRAMES_S", 2.0)
    listing = listing_of({p: d for p, d, _ in files.values()}, tmp_path, missing=["gone"])
    report, measured = check_dataset(listing, tmp_path / "report.json", workers=0, progress=False)
    assert measured == len(files)
    for name, (path, _, kind) in files.items():
        kinds = [p.kind for p in report.entries[str(path)].problems]
        assert kinds == (kind.split() if kind else []), (name, report.entries[str(path)].problems)
    assert report.missing == {"gone": "train"}
    damaged = report.entries[str(files["damaged.mp4"][0])].problems[0].message
    assert damaged == "cannot be decoded past 1.8 s of 2.0 s (damaged data at 1.96 s)"
    counts = report.counts()
    assert counts == {"videos": 9, "ok": 1, "warning": 2, "error": 6, "missing": 1}
    text = report.summary()
    for name, (path, _, kind) in files.items():
        assert (str(path) in text) == (kind is not None), name
    assert "gone: missing: no file" in text
    again = CheckReport.load(tmp_path / "report.json")
    assert again.bad() == report.bad() and again.counts() == counts
    assert json.loads((tmp_path / "report.json").read_text())["summary"] == counts


def test_a_rerun_measures_only_the_files_that_changed(files, tmp_path, monkeypatch):
    paths = {p: d for p, d, _ in files.values()}
    listing = listing_of(paths, tmp_path)
    check_dataset(listing, tmp_path / "report.json", progress=False)
    calls = []
    monkeypatch.setattr(check_module, "measure", lambda path, **_: calls.append(path) or 1 / 0)
    _, measured = check_dataset(listing, tmp_path / "report.json", progress=False)
    assert measured == 0 and calls == []
    good = files["good.mp4"][0]
    shutil.copy(files["long_gop.mp4"][0], good)  # replaced by another video
    monkeypatch.undo()
    report, measured = check_dataset(listing, tmp_path / "report.json", progress=False)
    assert measured == 1 and report.entries[str(good)].facts.frames == 100


def test_a_corrected_annotation_is_judged_again_without_decoding(files, tmp_path):
    path, _, _ = files["good.mp4"]
    facts = measure(str(path), PyAVReader(index_dir=tmp_path / "index"))
    assert facts.frames == 25 and facts.duration == pytest.approx(1.0)
    assert judge(facts, 1.0) == []
    assert [p.kind for p in judge(facts, 30.0)] == ["truncated"]
    longer = dataclasses.replace(facts, duration=30.0, header_duration=30.0)
    assert [p.kind for p in judge(longer, 1.0)] == ["annotation_duration"]


def test_workers_give_the_same_report(files, tmp_path):
    listing = listing_of({p: d for p, d, _ in files.values()}, tmp_path)
    serial, _ = check_dataset(listing, tmp_path / "a.json", workers=0, progress=False)
    pooled, _ = check_dataset(listing, tmp_path / "b.json", workers=2, progress=False)
    assert pooled.bad() == serial.bad()
    assert list(pooled.entries) == list(serial.entries)


def test_the_data_module_leaves_bad_videos_out_and_reads_the_copy(tiny_dataset, tmp_path, caplog):
    from dkp.data.annotations.activitynet import load_activitynet
    from dkp.data.datamodule import VideoDataModule
    from dkp.data.sampling import build_sampling

    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    victims = sorted((root / "videos").glob("*.mp4"))[:2]
    victims[0].write_bytes(b"")
    victims[1].write_bytes(b"junk" * 100)
    ann = root / "activity_net.v1-3.min.json"
    subsets = ["training", "validation", "testing"]
    splits = {"train": lambda: load_activitynet(ann, root / "videos", subsets)}
    records = splits["train"]().records
    paths = {str(r.path): r.duration for r in records}
    listing = listing_of(paths, root)
    listing.root = str(root)
    check_dataset(listing, tmp_path / "report.json", progress=False)
    manifest, summary = prepare_dataset(
        listing, tmp_path / "copy", RenditionSettings(short_side=32, gop=2), progress=False
    )
    assert (summary.made, summary.failed) == (len(records) - 2, 2)
    again = prepare_dataset(listing, tmp_path / "copy", RenditionSettings(short_side=32, gop=2))[1]
    assert (again.made, again.kept) == (0, len(records) - 2)
    with pytest.raises(ValueError, match="made with gop 2 \\(now 4\\)"):
        prepare_dataset(listing, tmp_path / "copy", RenditionSettings(short_side=32, gop=4))

    caplog.set_level(logging.INFO)
    module = VideoDataModule(
        splits,
        build_sampling("adaptive", n_t=2, ratio=2),
        num_classes=8,
        root=str(root),
        exclude_report=str(tmp_path / "report.json"),
        prepared=str(tmp_path / "copy"),
    )
    kept = module.records("train").records
    assert len(kept) == len(records) - 2
    assert all(str(r.path).startswith(str(tmp_path / "copy")) for r in kept)
    assert [r.video_id for r in kept] == [r.video_id for r in records if r.path not in victims]
    for victim in victims:
        assert f"leaving out {victim.stem[2:]} ({victim})" in caplog.text
    by_id = {r.video_id: r for r in records}
    for record in kept:  # same durations (annotations), same frame count and span
        original = PyAVReader().probe(by_id[record.video_id].path)
        copy = PyAVReader().probe(record.path)
        assert record.duration == by_id[record.video_id].duration
        assert (copy.num_frames, copy.duration) == (original.num_frames, original.duration)
    with pytest.raises(FileNotFoundError, match="data.prepared: .*manifest.json"):
        VideoDataModule(splits, None, 8, root=str(root), prepared=str(tmp_path))
    with pytest.raises(ValueError, match="data.exclude_report: .*not a usable check report"):
        VideoDataModule(splits, None, 8, root=str(root), exclude_report=str(ann))


def test_an_unusual_codec_and_a_lying_header_are_warned_about_with_their_reasons():
    from dkp.data.preparation.report import FileFacts

    facts = FileFacts(1000, 1, codec="mjpeg", pixel_format="yuvj422p", duration=10.0)
    facts.header_duration, facts.keyframe_gap = 12.5, 0.04
    problems = [(p.kind, p.severity, p.message) for p in judge(facts, 10.0)]
    assert problems == [
        ("header_duration", "warning", "the header says 12.5 s, the frames span 10.0 s"),
        ("codec", "warning", "codec mjpeg"),
        ("pixel_format", "warning", "pixel format yuvj422p"),
    ]
