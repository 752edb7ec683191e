"""Odd and damaged files as users meet them (cover art first, files cut short, headers that
lie, damaged packets), made from ffmpeg CLI encodes: every time gives the frame the ffmpeg
CLI's full decode shows, and what is wrong with the file is named in a warning."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from dkp.data.decoding import PyAVReader
from tests.data.decoding.corpus import cover_first, cut_in_packet, damage_packet, lie_about_duration
from tests.data.decoding.ffmpeg_truth import ffmpeg, full_decode, needs_ffmpeg, wrong_frames

pytestmark = [pytest.mark.slow, needs_ffmpeg]

SOURCE = ["-f", "lavfi", "-i", "testsrc2=size=128x72:rate=25", "-frames:v", "100"]
X264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
X264 += ["-x264-params", "keyint=24:min-keyint=24:scenecut=0:bframes=3:b-pyramid=normal"]
HEADER = "the header gives a duration of"
UNDECODABLE = "cannot decode the frames at"


def encoded(path: Path, *extra: str) -> Path:
    """100 frames (4 s) of a moving test pattern, H.264 with B-frames."""
    ffmpeg(*SOURCE, *X264, *extra, path)
    return path


def cover_art_first(path: Path) -> Path:
    """An MP4 with a PNG cover picture, which is its first stream."""
    video, cover = encoded(path.with_suffix(".video.mp4")), path.with_suffix(".png")
    ffmpeg("-f", "lavfi", "-i", "color=red:size=64x64", "-frames:v", "1", cover)
    ffmpeg(
        *("-i", video, "-i", cover, "-map", "0", "-map", "1", "-c", "copy"),
        *("-disposition:v:1", "attached_pic", path),
    )
    return cover_first(path)


def matroska_cut_in_half(path: Path) -> Path:
    data = encoded(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


ODD: dict[str, tuple[Callable[[Path], Path], str | None]] = {
    # file name: (how to make it, the phrase its warning carries, or None: no warning)
    "cover_art_first.mp4": (cover_art_first, None),
    "cut_in_half.mkv": (matroska_cut_in_half, HEADER),
    "header_says_10_hours.mkv": (lambda p: lie_about_duration(encoded(p)), HEADER),
    "cut_in_media_data.mp4": (
        lambda p: cut_in_packet(encoded(p, "-movflags", "+faststart"), 60),
        HEADER,
    ),
    "damaged_p_frame.mp4": (lambda p: damage_packet(encoded(p), 30), UNDECODABLE),
}


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_files_give_the_frames_a_full_decode_shows_and_name_the_problem(tmp_path, caplog, name):
    make, phrase = ODD[name]
    path = make(tmp_path / name)
    truth = full_decode(path)
    caplog.set_level(logging.WARNING)
    for skip in (False, True):
        index_dir = tmp_path / f"index_{skip}"
        for read in ("first read", "later read"):
            reader = PyAVReader(skip_nonref=skip, index_dir=index_dir)
            assert wrong_frames(reader, path, truth) == [], (skip, read)
    warned = {m for m in caplog.messages if m.startswith(f"{path}: ")}
    assert {phrase in m for m in warned} == ({True} if phrase else set()), warned
    info = PyAVReader().probe(path)
    step = truth.times[-1] - truth.times[-2]
    # Only a decode finds out that a packet is damaged: the index lists its frame.
    assert info.num_frames == len(truth.frames) + (phrase == UNDECODABLE)
    assert truth.times[-1] < info.duration <= truth.times[-1] + 2 * step + 1e-6
