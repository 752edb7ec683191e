"""Every codec and container the reader claims gives, at every time, the frame an independent
full decode (the ffmpeg CLI) shows then: with ``skip_nonref`` on and off, on the first read
(the demuxer's path, which indexes the file) and on later ones (the stored index; packets
read straight from the file where the container allows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dkp.data.decoding import PyAVReader
from tests.data.decoding.ffmpeg_truth import ffmpeg, full_decode, needs_ffmpeg, wrong_frames

pytestmark = [pytest.mark.slow, needs_ffmpeg]


def source(size: str = "128x72", rate: str = "25", n: int = 60) -> list[str]:
    """ffmpeg input arguments: ``n`` frames of a moving test pattern (each frame distinct)."""
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}", "-frames:v", str(n)]


X264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-x264-params"]
GOP = "keyint=24:min-keyint=24:scenecut=0"
EVERY_THIRD_DROPPED = ["-vf", r"select='not(eq(mod(n\,3)\,1))'", "-fps_mode", "vfr"]
VPX = ["-g", "24", "-deadline", "good", "-cpu-used", "8", "-b:v", "500k"]
TWO_LAYERS = "ts_number_layers=2:ts_target_bitrate=250,500:ts_rate_decimator=2,1:"
TWO_LAYERS += "ts_periodicity=2:ts_layer_id=0,1:ts_layering_mode=2"

#: file name: (ffmpeg arguments, skip_nonref saves work, later reads come from the file)
RECIPES: dict[str, tuple[list[str], bool, bool]] = {
    "h264_long_gop_b_pyramid.mp4": (
        [*source(n=100), *X264, "keyint=48:min-keyint=48:scenecut=0:bframes=3:b-pyramid=normal"],
        True,
        True,
    ),
    "h264_open_gop.mkv": (
        [*source(), *X264, "open-gop=1:keyint=12:min-keyint=12:scenecut=0:bframes=3"],
        True,
        True,
    ),
    "h264_interlaced.ts": (
        [*source(), *X264, f"{GOP}:bframes=3:interlaced=1", "-flags", "+ildct+ilme"],
        True,
        False,  # MPEG-TS cuts packets into 188-byte pieces
    ),
    "h264_fragmented.mp4": (
        [*source(), *X264, f"{GOP}:bframes=3", "-movflags", "frag_keyframe+empty_moov"],
        True,
        True,
    ),
    "h264_29.97fps.mp4": ([*source(rate="30000/1001"), *X264, f"{GOP}:bframes=3"], True, True),
    "h264_variable_rate.mkv": (
        [*source(n=90), *EVERY_THIRD_DROPPED, *X264, f"{GOP}:bframes=3"],
        True,
        True,
    ),
    "h264_variable_rate.mp4": (
        [*source(n=90), *EVERY_THIRD_DROPPED, *X264, f"{GOP}:bframes=3"],
        True,
        True,
    ),
    "h264_starts_at_3s.mkv": (
        [*source(), "-output_ts_offset", "3", *X264, f"{GOP}:bframes=3"],
        True,
        True,
    ),
    "h264_10bit.mp4": (
        [*source(), *X264[:2], "-pix_fmt", "yuv420p10le", "-x264-params", GOP],
        True,
        True,
    ),
    "h264_444_odd_size.mkv": (
        [*source(size="97x61"), *X264[:2], "-pix_fmt", "yuv444p", "-x264-params", GOP],
        True,
        True,
    ),
    "h264_no_b_frames.avi": ([*source(), *X264, f"{GOP}:bframes=0"], False, False),
    "h264_b_frames.avi": ([*source(), *X264, f"{GOP}:bframes=3"], False, False),
    "hevc.mp4": (
        [*source(), "-c:v", "libx265", "-tag:v", "hvc1", "-x265-params"]
        + [f"log-level=error:{GOP}:bframes=4:b-pyramid=1"],
        True,
        True,
    ),
    "hevc_10bit.mkv": (
        [*source(), "-c:v", "libx265", "-pix_fmt", "yuv420p10le", "-x265-params"]
        + [f"log-level=error:{GOP}:bframes=4"],
        True,
        True,
    ),
    "vp8_alt_ref.webm": ([*source(), "-c:v", "libvpx", *VPX, "-auto-alt-ref", "1"], False, True),
    "vp8_two_layers.webm": (
        [*source(), "-c:v", "libvpx", *VPX, "-ts-parameters", TWO_LAYERS],
        True,
        True,
    ),
    "vp9_alt_ref.webm": (
        [*source(), "-c:v", "libvpx-vp9", *VPX, "-auto-alt-ref", "1"],
        False,
        True,
    ),
    "vp9_444_odd_size.webm": (
        [*source(size="97x61"), "-c:v", "libvpx-vp9", "-pix_fmt", "yuv444p", *VPX],
        False,
        True,
    ),
    "av1_libaom.mkv": (
        [*source(), "-c:v", "libaom-av1", "-cpu-used", "8", "-g", "24"],
        False,
        False,
    ),
    "av1_svt.mp4": ([*source(), "-c:v", "libsvtav1", "-preset", "12", "-g", "24"], False, False),
    "av1_svt_10bit.webm": (
        [*source(), "-c:v", "libsvtav1", "-preset", "12", "-g", "24", "-pix_fmt", "yuv420p10le"],
        False,
        False,
    ),
    "mpeg4_b_frames.mp4": (
        [*source(), "-c:v", "mpeg4", "-bf", "2", "-g", "24", "-q:v", "4"],
        True,
        False,
    ),
    "mpeg4_b_frames.avi": (
        [*source(), "-c:v", "mpeg4", "-bf", "2", "-g", "24", "-q:v", "4"],
        False,
        False,
    ),
    "xvid_packed_b_frames.avi": (  # as UCF101 and HMDB51 store theirs
        [*source(), "-c:v", "libxvid", "-bf", "2", "-g", "24", "-q:v", "4"],
        False,
        False,
    ),
    "mjpeg.avi": ([*source(), "-c:v", "mjpeg", "-q:v", "3"], False, False),
    "mjpeg_odd_size.mov": ([*source(size="97x61"), "-c:v", "mjpeg", "-q:v", "3"], False, False),
    # Cut at 0.5 s by stream copy: an edit list starts mid-GOP, after discarded packets.
    "h264_edit_list.mov": (["-ss", "0.5", "-i", "{h264_29.97fps.mp4}", "-c", "copy"], True, False),
}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Encode a recipe's file once (and what it is cut from); returns its path."""
    root = tmp_path_factory.mktemp("ffmpeg_corpus")

    def make(name: str) -> Path:
        path = root / name
        if not path.exists():
            args = RECIPES[name][0]
            args = [str(make(a[1:-1])) if a.startswith("{") else a for a in args]
            ffmpeg(*args, path)
        return path

    return make


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_time_gives_the_frame_a_full_decode_shows(made, tmp_path, name):
    path = made(name)
    _, skips, from_file = RECIPES[name]
    truth = full_decode(path)
    assert len(set(truth.frames)) == len(truth.frames) > 40  # every frame tells itself apart
    decoded = {}
    for skip in (False, True):
        index_dir = tmp_path / f"index_{skip}"
        first = PyAVReader(skip_nonref=skip, index_dir=index_dir)
        assert wrong_frames(first, path, truth) == [], ("first read", skip)
        later = PyAVReader(skip_nonref=skip, index_dir=index_dir)
        assert wrong_frames(later, path, truth) == [], ("later read", skip)
        assert (first.stats.indexed_files, later.stats.indexed_files) == (1, 0)
        assert (later.stats.file_reads > 0) == from_file
        assert first.stats.missing_frames == later.stats.missing_frames == 0
        decoded[skip] = later.stats.decoded_frames
    # Where skipping cannot be exact (AV1's decoder reads it once), it is off.
    assert (decoded[True] < decoded[False]) == skips, decoded
    info = PyAVReader().probe(path)
    assert info.num_frames == len(truth.frames)
    step = truth.times[-1] - truth.times[-2]
    assert truth.times[-1] < info.duration <= truth.times[-1] + 2 * step + 1e-6
