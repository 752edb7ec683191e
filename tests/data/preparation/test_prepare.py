"""Renditions: the frame shown at every time is the original's, whole files or none, resumable."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from dkp.data.decoding import FrameRequest, PyAVReader
from dkp.data.preparation import prepare as prepare_module
from dkp.data.preparation.manifest import RenditionSettings
from dkp.data.preparation.prepare import prepare_video, rendition_size
from tests.data.preparation.numbered import frame_number, write_numbered

X264 = {"x264-params": "keyint=12:min-keyint=12:scenecut=0:bframes=2", "crf": "18"}
SOURCES = {  # name: (write it, as write_numbered's arguments)
    "ntsc_b_frames_audio.mp4": dict(
        pts=[1001 * i for i in range(40)],
        time_base=Fraction(1, 30000),
        rate=Fraction(30000, 1001),
        options=X264,
        audio=True,
    ),
    "variable_rate.mkv": dict(
        pts=[40 * i + 17 * (i % 3) + 25 * (i > 20) for i in range(40)],
        time_base=Fraction(1, 1000),
        options=X264,
    ),
    "starts_at_3s.mp4": dict(
        pts=[3000 + 40 * i for i in range(30)], time_base=Fraction(1, 1000), options=X264
    ),
    "mpeg4_b_frames.avi": dict(
        pts=list(range(40)),
        time_base=Fraction(1, 25),
        codec="mpeg4",
        options={"bf": "2", "g": "12", "qscale": "3"},
    ),
}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("numbered")
    return {name: write_numbered(root / name, **kw) for name, kw in SOURCES.items()}


def numbers_shown(path, times) -> list[int]:
    """The number of the frame the reader shows at each time."""
    frames = PyAVReader().read(path, [FrameRequest(tuple(times), 48, 64)])[0]
    return [frame_number(f) for f in frames]


@pytest.mark.parametrize("name", sorted(SOURCES))
@pytest.mark.parametrize("gop", [1, 5])
def test_the_frame_shown_at_every_time_is_the_originals(sources, tmp_path, name, gop):
    source = sources[name]
    settings = RenditionSettings(short_side=32, gop=gop)
    reader = PyAVReader(index_dir=tmp_path / "index")
    entry = prepare_video((str(source), f"copy/{name}.mp4"), reader, str(tmp_path), settings)
    assert entry.error == ""
    rendition = tmp_path / entry.rendition
    original, copy = PyAVReader().probe(source), PyAVReader().probe(rendition)
    assert (copy.num_frames, copy.duration) == (original.num_frames, original.duration)
    assert (copy.width, copy.height) == (42, 32) == (entry.width, entry.height)
    # Every frame's start, just before and after it, and times between: all frames tell apart.
    starts = np.unique(np.round(np.linspace(0, original.duration, 400), 6))
    times = np.concatenate([starts, starts + 1e-4, np.clip(starts - 1e-4, 0, None)])
    shown = numbers_shown(source, times)
    assert len(set(shown)) == original.num_frames
    assert numbers_shown(rendition, times) == shown


def test_renditions_hold_no_audio_and_keyframes_every_gop_frames(sources, tmp_path):
    import av

    source = sources["ntsc_b_frames_audio.mp4"]
    reader = PyAVReader(index_dir=tmp_path / "index")
    settings = RenditionSettings(short_side=32, gop=4)
    entry = prepare_video((str(source), "a.mp4"), reader, str(tmp_path), settings)
    with av.open(str(tmp_path / entry.rendition)) as container:
        assert [s.type for s in container.streams] == ["video"]
        keys = [p.is_keyframe for p in container.demux(video=0) if p.size]
    assert [i for i, key in enumerate(keys) if key] == list(range(0, 40, 4))
    data = (tmp_path / entry.rendition).read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # the index at the front


def test_a_long_keyframe_interval_is_read_in_pieces_with_the_same_frames(
    sources, tmp_path, monkeypatch
):
    source = sources["mpeg4_b_frames.avi"]
    monkeypatch.setattr(prepare_module, "PASS_BYTES", 5 * 64 * 48 * 3)  # 5 frames a pass
    reader = PyAVReader(index_dir=tmp_path / "index")
    entry = prepare_video((str(source), "a.mp4"), reader, str(tmp_path), RenditionSettings(gop=3))
    times = np.linspace(0, 1.6, 97)
    assert numbers_shown(tmp_path / entry.rendition, times) == numbers_shown(source, times)


def test_a_broken_video_gets_a_named_error_and_leaves_no_file(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 100)
    reader = PyAVReader(index_dir=tmp_path / "index")
    entry = prepare_video((str(broken), "out/b.mp4"), reader, str(tmp_path), RenditionSettings())
    assert entry.error.startswith(str(broken))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_rendition_size_keeps_the_aspect_never_upscales_and_stays_even():
    assert rendition_size(1280, 720, 256) == (456, 256)
    assert rendition_size(720, 1280, 256) == (256, 456)
    assert rendition_size(320, 240, 256) == (320, 240)
    assert rendition_size(641, 361, 256) == (454, 256)


def test_settings_out_of_range_are_named():
    with pytest.raises(ValueError, match="gop: 0"):
        RenditionSettings(gop=0).validate()
    with pytest.raises(ValueError, match="preset: 'warp'"):
        RenditionSettings(preset="warp").validate()


def test_a_rerun_remakes_only_the_changed_original_and_clears_a_killed_runs_leftovers(
    sources, tmp_path
):
    import os
    import shutil

    from dkp.data.preparation.listing import DatasetListing, ListedVideo
    from dkp.data.preparation.prepare import prepare_dataset

    root = tmp_path / "data"
    root.mkdir()
    names = ["ntsc_b_frames_audio.mp4", "starts_at_3s.mp4", "variable_rate.mkv"]
    paths = [str(shutil.copy(sources[name], root / name)) for name in names]
    listing = DatasetListing(
        {p: ListedVideo(p, [p]) for p in paths},
        {},
        PyAVReader(index_dir=tmp_path / "index"),
        str(root),
    )
    copy, settings = tmp_path / "copy", RenditionSettings(short_side=32, gop=2)
    manifest, summary = prepare_dataset(listing, copy, settings, progress=False)
    assert (summary.made, summary.kept, summary.failed) == (3, 0, 0)
    made = {k: (copy / e.rendition).stat().st_mtime_ns for k, e in manifest.entries.items()}
    assert sorted(manifest.entries) == sorted(names)
    assert manifest.entries["variable_rate.mkv"].rendition == "variable_rate.mkv.mp4"

    shutil.copy(sources["mpeg4_b_frames.avi"], paths[1])  # an original replaced
    (copy / ".left.mp4.123.tmp").write_bytes(b"half a rendition")  # a killed run's leftover
    manifest, summary = prepare_dataset(listing, copy, settings, progress=False)
    assert (summary.made, summary.kept, summary.failed) == (1, 2, 0)
    remade = {
        k for k, e in manifest.entries.items() if (copy / e.rendition).stat().st_mtime_ns != made[k]
    }
    assert remade == {"starts_at_3s.mp4"}
    assert manifest.entries["starts_at_3s.mp4"].frames == 40  # the new original's frames
    assert not (copy / ".left.mp4.123.tmp").exists()
    assert os.stat(paths[1]).st_size == manifest.entries["starts_at_3s.mp4"].size
