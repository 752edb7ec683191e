import os
import pickle
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from dkp.data.decoding import (
    FrameCache,
    FrameFolderReader,
    FrameRequest,
    PyAVReader,
    VideoDecodeError,
    index_store,
)

W, H = 64, 48
GOP = 8
X264 = {"x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0:bframes=2:b-adapt=0", "crf": "12"}
VP9 = {"lossless": "1", "g": str(GOP), "deadline": "realtime", "cpu-used": "8"}
MS = Fraction(1, 1000)


def pattern(i: int, shift: int = 0) -> np.ndarray:
    """A frame that names its index: bit blocks on top, a distinct gray level below."""
    img = np.zeros((H, W, 3), np.uint8)
    for bit in range(8):
        img[: H // 2, bit * W // 8 : (bit + 1) * W // 8] = 255 * ((i >> bit) & 1)
    img[H // 2 :] = (37 * i + shift) % 256
    return img


def silence(samples: int) -> av.AudioFrame:
    zeros = np.zeros((1, samples), np.int16)
    frame = av.AudioFrame.from_ndarray(zeros, format="s16", layout="mono")
    frame.sample_rate = 16000
    return frame


def write_video(path, codec="libx264", n=50, pts=None, options=None, muxer_options=None):
    """Encode n pattern frames at 25 fps, or at ``pts`` milliseconds when given."""
    with av.open(str(path), "w", options=muxer_options or {}) as out:
        stream = out.add_stream(codec, rate=25, options=options or X264)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        if pts is not None:
            stream.time_base = stream.codec_context.time_base = MS
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(pattern(i), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], MS
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return Path(path)


def sequential(path, height=H, width=W):
    """Every frame of a full decode, converted as the reader does, and its time from the first."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = [
            (f.pts, f.to_ndarray(width=width, height=height, format="rgb24"))
            for f in container.decode(stream)
        ]
        tb = stream.time_base
    times = [float((pts - decoded[0][0]) * tb) for pts, _ in decoded]
    frames = [array for _, array in decoded]
    assert len({f.tobytes() for f in frames}) == len(frames), "fixture frames must be distinct"
    return times, frames


def shown_at(times, t):
    """Index of the frame a sequential decode shows at t."""
    return max([i for i, start in enumerate(times) if start <= t + 1e-6], default=0)


def keyframe_indices(path):
    """Presentation-order indices of the keyframes, from the packets (no decoding)."""
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    order = sorted(p.pts for p in packets)
    return sorted(order.index(p.pts) for p in packets if p.is_keyframe)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    vfr = np.cumsum(np.r_[0, rng.choice([17, 33, 40, 67, 120], 39)]).tolist()
    start = [500 + 40 * i for i in range(50)]
    return {
        "mp4": write_video(root / "h264.mp4"),
        "mkv": write_video(root / "h264.mkv"),
        "webm": write_video(root / "vp9.webm", "libvpx-vp9", options=VP9),
        "vfr": write_video(root / "vfr.mkv", n=40, pts=vfr),
        "start_mp4": write_video(root / "start.mp4", pts=start),
        "start_mkv": write_video(root / "start.mkv", pts=start),
        "live": write_video(root / "live.mkv", muxer_options={"live": "1"}),
    }


def check_against_sequential(reader, path, times):
    full, half = FrameRequest(times, H, W), FrameRequest(times[::-1], H // 2, W // 2)
    out_full, out_half = reader.read(path, [full, half])
    assert out_full.shape == (len(times), H, W, 3) and out_full.dtype == np.uint8
    assert out_half.shape == (len(times), H // 2, W // 2, 3)
    for request, out in ((full, out_full), (half, out_half)):
        ref_times, ref_frames = sequential(path, request.height, request.width)
        for t, got in zip(request.times, out, strict=True):
            assert np.array_equal(got, ref_frames[shown_at(ref_times, t)]), f"t={t}"


@pytest.mark.parametrize("kind", ["mp4", "mkv", "webm"])
def test_frames_match_a_sequential_decode(videos, kind):
    path = videos[kind]
    ref_times, _ = sequential(path)
    assert ref_times[5] == pytest.approx(0.2) and len(ref_times) == 50
    between = [(a + b) / 2 for a, b in zip(ref_times[20:23], ref_times[21:24], strict=True)]
    # Exact boundaries as literals: 0.2 s is frame 5, 1.0 s frame 25, 1.96 s the last frame.
    assert [shown_at(ref_times, t) for t in (0.2, 1.0, 1.96)] == [5, 25, 49]
    boundaries = [round(i * 0.04, 2) for i in range(50)]  # every frame's start, as typed
    times = (1.0, 0.0, 1.96, -0.5, 7.0, *between, 0.2, 0.3199, *boundaries[::-1], ref_times[13])
    check_against_sequential(PyAVReader(), path, times)


@pytest.mark.parametrize("kind", ["vfr", "start_mp4", "start_mkv"])
def test_variable_rate_and_late_start_match_a_sequential_decode(videos, kind):
    path = videos[kind]
    ref_times, _ = sequential(path)
    if kind == "vfr":
        assert len(set(np.round(np.diff(ref_times), 3))) > 3  # really irregular
    else:
        with av.open(str(path)) as container:
            assert container.streams.video[0].start_time > 0
    between = [(a + b) / 2 for a, b in zip(ref_times, ref_times[1:], strict=False)]
    times = (*ref_times[::3], *between[::4], -1.0, 99.0, ref_times[-1])
    check_against_sequential(PyAVReader(), path, times[::-1])


@pytest.mark.parametrize("kind", ["mp4", "mkv", "webm"])
def test_decodes_only_from_the_keyframe_up_to_each_time(videos, kind):
    path = videos[kind]
    keyframes = keyframe_indices(path)
    assert keyframes == list(range(0, 50, GOP))
    # One seek per keyframe that has targets after it; 15 -> 16 crosses a keyframe.
    targets = [3, 5, 13, 15, 16, 30, 31, 49, 13]
    times = [i * 0.04 for i in targets]
    reader = PyAVReader()
    reader.read(path, [FrameRequest(times, H, W)])
    assert (reader.stats.decoded_frames, reader.stats.seeks) == (least_work(path, times, False), 5)
    assert reader.stats.skipped_packets == 0  # every seek lands on its keyframe, not before
    if kind == "webm":  # no B-frames: decode order is presentation order
        assert reader.stats.decoded_frames == 6 + 8 + 1 + 8 + 2
    else:  # decode order 0 3 1 2 6 4 5 7 | 8 ...: B-frame 5 needs P-frame 6 decoded first
        assert reader.stats.decoded_frames == 7 + 8 + 1 + 8 + 2


def test_student_and_teacher_in_one_gop_share_one_seek(videos):
    reader = PyAVReader()
    small, large = FrameRequest((0.36,), 24, 32), FrameRequest((0.56, 0.36), 96, 128)
    out_small, out_large = reader.read(videos["mp4"], [small, large])
    # From keyframe 8 through frame 14 in decode order: 8, 11, 9, 10, 14 (12 and 13 follow 14).
    least = least_work(videos["mp4"], (0.36, 0.56), False)
    assert (reader.stats.seeks, reader.stats.decoded_frames) == (1, least) == (1, 5)
    ref_times, ref_frames = sequential(videos["mp4"], 96, 128)
    assert np.array_equal(out_large[0], ref_frames[14])
    assert np.array_equal(out_large[1], ref_frames[9])


def referenced_indices(path):
    """Presentation-order indices of the frames a decoder skipping non-reference ones outputs."""
    ref_times, _ = sequential(path)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = "NONREF"
        first = min(p.pts for p in container.demux(stream) if p.size)
        container.seek(0)
        tb = stream.time_base
        shown = [float((f.pts - first) * tb) for f in container.decode(stream)]
    return {shown_at(ref_times, t) for t in shown}


def decode_order(path):
    """Presentation-order index of each frame, in the order the demuxer gives the packets."""
    with av.open(str(path)) as container:
        packets = [p.pts for p in container.demux(video=0) if p.size]
    order = sorted(packets)
    return [order.index(pts) for pts in packets]


def least_work(path, times, skip_nonref):
    """Frames decoded from the keyframe before each time through it in decode order (shared
    between times), less the skippable ones: every frame a target references precedes it."""
    ref_times, _ = sequential(path)
    targets = [shown_at(ref_times, t) for t in times]
    keyframes = keyframe_indices(path)
    order = decode_order(path)
    needed = set()
    for i in targets:
        key = max(k for k in keyframes if k <= i)
        needed.update(order[order.index(key) : order.index(i) + 1])
    if skip_nonref:
        needed &= referenced_indices(path) | set(targets)
    return len(needed)


def uniform(path, n):
    """``n`` times spread uniformly over the video, as evaluation samples them."""
    ref_times, _ = sequential(path)
    duration = ref_times[-1] + (ref_times[-1] - ref_times[-2])
    return [(i + 0.5) * duration / n for i in range(n)]


ALL_KINDS = ["mp4", "mkv", "webm", "vfr", "start_mp4", "start_mkv", "live"]


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("skip_nonref", [False, True])
def test_decoded_frames_are_the_least_work_on_every_generated_video(videos, kind, skip_nonref):
    path = videos[kind]
    for n in (3, 8, 25):
        times = uniform(path, n)
        reader = PyAVReader(skip_nonref=skip_nonref)
        reader.read(path, [FrameRequest(times, H, W), FrameRequest(times[::2], H // 2, W // 2)])
        assert reader.stats.decoded_frames == least_work(path, times, skip_nonref), n


@pytest.mark.parametrize("kind", ["mp4", "mkv", "webm"])
def test_skipping_non_reference_frames_changes_no_frame(videos, kind):
    times = (1.0, 0.0, 1.96, 0.2, 0.3199, 0.44, 0.92, 1.3, 0.52)
    plain, skipping = PyAVReader(), PyAVReader(skip_nonref=True)
    check_against_sequential(skipping, videos[kind], times)
    check_against_sequential(plain, videos[kind], times)
    assert skipping.stats.seeks == plain.stats.seeks
    if kind == "webm":  # VP9 here has no non-reference frames: nothing to skip
        assert skipping.stats.decoded_frames == plain.stats.decoded_frames
    else:  # x264 with 2 B-frames: one of them is never referenced
        assert skipping.stats.decoded_frames < plain.stats.decoded_frames
    threaded = PyAVReader(threads=2, thread_type="FRAME", skip_nonref=True)
    check_against_sequential(threaded, videos[kind], times)


def test_threads_give_the_same_frames(videos):
    reader = PyAVReader(threads=2, thread_type="FRAME")
    check_against_sequential(reader, videos["mkv"], (0.0, 0.44, 1.3, 1.96))


def test_audio_stream_is_ignored(tmp_path):
    path = tmp_path / "with_audio.mkv"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=25, options=X264)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        audio = out.add_stream("mp2", rate=16000, layout="mono")
        for i in range(20):
            out.mux(video.encode(av.VideoFrame.from_ndarray(pattern(i), format="rgb24")))
            out.mux(audio.encode(silence(640)))
        out.mux(video.encode())
        out.mux(audio.encode())
    check_against_sequential(PyAVReader(), path, (0.0, 0.33, 0.76))


def test_probe_counts_the_frames_and_their_span_without_decoding(videos):
    reader = PyAVReader()
    info = reader.probe(videos["mp4"])
    assert (info.duration, info.fps, info.width, info.height, info.num_frames) == (
        2.0,
        25.0,
        W,
        H,
        50,
    )
    webm = reader.probe(videos["webm"])
    assert webm.duration == pytest.approx(2.0, abs=1e-9) and webm.num_frames == 50
    for kind in ("start_mp4", "start_mkv"):  # measured from the first frame, not from 0
        assert reader.probe(videos[kind]).duration == pytest.approx(2.0, abs=1e-9)
    assert reader.stats.decoded_frames == 0


def test_probe_demuxes_when_the_header_lacks_the_duration(videos):
    with av.open(str(videos["live"])) as container:
        assert container.duration is None and not container.streams.video[0].duration
    reader = PyAVReader()
    info = reader.probe(videos["live"])
    assert info.duration == pytest.approx(2.0, abs=1e-9) and info.num_frames == 50
    assert reader.stats.decoded_frames == 0
    check_against_sequential(reader, videos["live"], (1.5, 0.12, 0.0, 1.96))


def test_raw_stream_without_timestamps_is_refused(tmp_path):
    path = write_video(tmp_path / "raw.h264")
    with pytest.raises(VideoDecodeError, match="raw.h264.*timestamps"):
        PyAVReader().read(path, [FrameRequest((0.5,), H, W)])


def audio_only(path):
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mp2", rate=16000, layout="mono")
        for _ in range(10):
            out.mux(stream.encode(silence(1152)))
        out.mux(stream.encode())
    return path


@pytest.mark.parametrize("case", ["missing", "empty", "text", "truncated", "audio"])
def test_unreadable_files_raise_naming_the_file(tmp_path, case):
    path = tmp_path / f"{case}_file.mp4"
    if case == "empty":
        path.touch()
    elif case == "text":
        path.write_text("this is not a video\n" * 20)
    elif case == "truncated":  # an MP4 cut short loses its index (the moov box at the end)
        data = write_video(path, n=10).read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "audio":
        path = audio_only(tmp_path / "audio_file.mkv")
    reader = PyAVReader()
    for call in (lambda: reader.probe(path), lambda: reader.read(path, [FrameRequest((0,), 8, 8)])):
        with pytest.raises(VideoDecodeError) as caught:
            call()
        assert path.name in str(caught.value) and caught.value.path == str(path)
        assert caught.value.reason and caught.value.reason in str(caught.value)
    if case == "audio":
        assert "no video stream" in str(caught.value)


def test_limits_raise_and_close_the_file(videos):
    path = videos["mp4"]
    open_files = len(os.listdir("/proc/self/fd"))
    with pytest.raises(VideoDecodeError, match="h264.mp4.*max_pixels"):
        PyAVReader(max_pixels=W * H - 1).probe(path)
    PyAVReader(max_pixels=W * H).probe(path)
    strict = PyAVReader(max_decoded_frames=7)
    with pytest.raises(VideoDecodeError, match="h264.mp4.*8 decoded frames"):
        strict.read(path, [FrameRequest((0.28,), H, W)])  # frame 7 needs all of 0..7
    assert strict.stats.decoded_frames == 0
    # frame 5 needs 0 3 1 2 6 4 5 in decode order: exactly the limit
    strict.read(path, [FrameRequest((0.20,), H, W)])
    strict.read(path, [FrameRequest((0.36,), H, W)])  # the limit holds per read: 8 11 9
    assert strict.stats.decoded_frames == 7 + 3
    assert len(os.listdir("/proc/self/fd")) == open_files


def test_errors_and_readers_pickle(videos):  # DataLoader workers may be spawned
    error = pickle.loads(pickle.dumps(VideoDecodeError("a/b.mp4", "broken")))
    assert (error.path, error.reason, str(error)) == ("a/b.mp4", "broken", "a/b.mp4: broken")
    reader, request = PyAVReader(cache=FrameCache()), [FrameRequest((0.5,), H, W)]
    (before,) = reader.read(videos["mp4"], request)
    clone = pickle.loads(pickle.dumps(reader))
    assert np.array_equal(clone.read(videos["mp4"], request)[0], before)
    assert clone.stats.decoded_frames == reader.stats.decoded_frames  # served from its cache


def test_request_validation():
    assert FrameRequest([0, 1.5], 2, 3).times == (0.0, 1.5)
    with pytest.raises(ValueError):
        FrameRequest((float("nan"),), 2, 3)
    with pytest.raises(ValueError):
        FrameRequest((0.0,), 0, 3)


def test_cache_serves_repeated_reads_without_decoding(videos):
    reader = PyAVReader(cache=FrameCache())
    requests = [FrameRequest((0.5, 1.2, 0.5), H, W), FrameRequest((1.2,), 12, 16)]
    first = reader.read(videos["mkv"], requests)
    decoded, seeks = reader.stats.decoded_frames, reader.stats.seeks
    first[0][0] = 0  # outputs are the caller's to modify; the cache keeps its own copy
    again = reader.read(videos["mkv"], requests)
    assert (reader.stats.decoded_frames, reader.stats.seeks) == (decoded, seeks)
    assert reader.stats.cache_hits == 4
    ref_times, ref_frames = sequential(videos["mkv"])
    assert np.array_equal(again[0][0], ref_frames[12])
    assert np.array_equal(again[0][1], ref_frames[30])


def test_cache_evicts_beyond_its_byte_bound(videos):
    cache = FrameCache(max_bytes=2 * H * W * 3)
    reader = PyAVReader(cache=cache)
    reader.read(videos["mp4"], [FrameRequest((0.0, 0.04, 0.08), H, W)])
    assert len(cache) == 2 and cache.nbytes == 2 * H * W * 3
    decoded = reader.stats.decoded_frames
    reader.read(videos["mp4"], [FrameRequest((0.08,), H, W)])  # the most recent: kept
    assert reader.stats.decoded_frames == decoded
    reader.read(videos["mp4"], [FrameRequest((0.0,), H, W)])  # the oldest: evicted
    assert reader.stats.decoded_frames == decoded + 1


def test_cache_is_least_recently_used():
    cache = FrameCache(max_bytes=20)
    a, b, c = (np.full(10, i, np.uint8) for i in range(3))
    cache.put(("a",), a)
    cache.put(("b",), b)
    assert cache.get(("a",)) is a
    cache.put(("c",), c)
    assert cache.get(("b",)) is None and cache.get(("a",)) is a and cache.get(("c",)) is c
    cache.put(("big",), np.zeros(21, np.uint8))
    assert len(cache) == 2 and cache.nbytes == 20


def test_cache_never_serves_a_rewritten_file(tmp_path):
    path = write_video(tmp_path / "clip.mp4", n=16)
    reader = PyAVReader(cache=FrameCache())
    (old,) = reader.read(path, [FrameRequest((0.2,), H, W)])
    decoded = reader.stats.decoded_frames
    with av.open(str(path), "w") as out:  # same size and timestamps, other pictures
        stream = out.add_stream("libx264", rate=25, options=X264)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for i in range(16):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(pattern(i, 100), format="rgb24")))
        out.mux(stream.encode())
    os.utime(path, ns=(1, 1))  # a distinct mtime even on coarse-grained file systems
    (new,) = reader.read(path, [FrameRequest((0.2,), H, W)])
    assert reader.stats.decoded_frames > decoded
    assert not np.array_equal(new, old)
    assert np.array_equal(new[0], sequential(path)[1][5])


@pytest.fixture
def frame_folder(tmp_path):
    folder = tmp_path / "video_0001"
    folder.mkdir()
    for i in range(12):  # named from 1, so plain string order would put img_10 before img_2
        Image.fromarray(pattern(i)).save(folder / f"img_{i + 1}.png")
    (folder / "notes.txt").write_text("not a frame")
    return folder


def test_frame_folder_shows_frame_i_from_i_over_fps(frame_folder):
    reader = FrameFolderReader(fps=10, pattern="*.png")
    times = (0.0, -1.0, 0.1, 0.15, 0.2, 1.1, 1.15, 30.0, 0.7, 0.1)
    expected = [0, 0, 1, 1, 2, 11, 11, 11, 7, 1]
    small = FrameRequest(times[:4], 24, 32)
    full, half = reader.read(frame_folder, [FrameRequest(times, H, W), small])
    assert full.shape == (10, H, W, 3) and full.dtype == np.uint8
    for got, i in zip(full, expected, strict=True):
        assert np.array_equal(got, pattern(i))
    for got, i in zip(half, expected[:4], strict=True):
        resized = Image.fromarray(pattern(i)).resize((32, 24), Image.Resampling.BILINEAR)
        assert np.array_equal(got, np.asarray(resized))
    assert reader.stats.decoded_frames == len(set(expected))  # each image once


def test_frame_folder_probe_and_jpeg(tmp_path, frame_folder):
    info = FrameFolderReader(fps=10, pattern="*.png").probe(frame_folder)
    assert (info.duration, info.fps, info.width, info.height, info.num_frames) == (
        1.2,
        10,
        W,
        H,
        12,
    )
    for i in range(12):
        Image.fromarray(pattern(i)).save(tmp_path / f"frame{i + 1}.jpg", quality=95)
    (out,) = FrameFolderReader(fps=10).read(tmp_path, [FrameRequest((0.95,), H, W)])
    assert np.array_equal(out[0], np.asarray(Image.open(tmp_path / "frame10.jpg").convert("RGB")))


def test_frame_folder_errors_name_the_folder(tmp_path):
    reader = FrameFolderReader(fps=25)
    with pytest.raises(VideoDecodeError, match="missing_video"):
        reader.read(tmp_path / "missing_video", [FrameRequest((0,), 8, 8)])
    (tmp_path / "empty_video").mkdir()
    with pytest.raises(VideoDecodeError, match="empty_video"):
        reader.probe(tmp_path / "empty_video")


def test_frame_folder_cache(frame_folder):
    reader = FrameFolderReader(fps=10, cache=FrameCache(), pattern="*.png")
    request = [FrameRequest((0.3, 0.5), H, W)]
    first = reader.read(frame_folder, request)
    second = reader.read(frame_folder, request)
    assert reader.stats.decoded_frames == 2 and np.array_equal(first[0], second[0])
    Image.fromarray(pattern(50)).save(frame_folder / "img_4.png")
    os.utime(frame_folder / "img_4.png", ns=(1, 1))
    (third,) = reader.read(frame_folder, request)
    assert reader.stats.decoded_frames == 3 and np.array_equal(third[0], pattern(50))


def test_reader_pickles_after_reading_and_reads_the_same(videos):
    """DataLoader workers and spawned DDP ranks get the reader pickled, swscale state and all."""
    reader = PyAVReader(skip_nonref=True)
    request = [FrameRequest((0.1, 0.9), 24, 32), FrameRequest((0.5,), H, W)]
    first = reader.read(videos["mp4"], request)
    copy = pickle.loads(pickle.dumps(reader))
    for a, b in zip(first, copy.read(videos["mp4"], request), strict=True):
        assert np.array_equal(a, b)


def test_packet_indexes_kept_are_bounded_by_frames(videos):
    reader = PyAVReader()
    reader._INDEX_FRAMES_KEPT = 60  # each fixture video has 50 frames: one index fits
    built = []
    for kind in ("mp4", "webm", "webm", "mp4"):
        before = reader.stats.indexed_files
        reader.read(videos[kind], [FrameRequest((0.5,), H, W)])
        built += [kind] * (reader.stats.indexed_files - before)
    assert built == ["mp4", "webm", "mp4"]
    assert len(reader._indexes) == 1 and reader._index_frames == 50


def read_with_index_dir(path, index_dir, times=(0.1, 0.7, 1.5)):
    """A fresh reader's frames, stats and the index files it left."""
    reader = PyAVReader(skip_nonref=True, index_dir=index_dir)
    (frames,) = reader.read(path, [FrameRequest(times, H, W)])
    return frames, reader.stats


@pytest.mark.parametrize("kind", ["mp4", "webm", "vfr"])
def test_index_files_spare_other_readers_the_demux_pass(videos, tmp_path, kind):
    first, first_stats = read_with_index_dir(videos[kind], tmp_path)
    assert first_stats.indexed_files == 1 and len(list(tmp_path.glob("*.idx"))) == 1
    again, stats = read_with_index_dir(videos[kind], tmp_path)
    assert stats.indexed_files == 0  # loaded from the file: nothing demuxed to index it
    assert np.array_equal(first, again)
    assert (stats.decoded_frames, stats.seeks) == (first_stats.decoded_frames, first_stats.seeks)


def test_a_rewritten_video_gets_a_new_index(videos, tmp_path):
    path = tmp_path / "video.mp4"
    path.write_bytes(videos["webm"].read_bytes())  # a VP9 file named .mp4 first ...
    read_with_index_dir(path, tmp_path / "index")
    os.replace(write_video(tmp_path / "new.mkv", n=30), path)  # ... then 30 H.264 frames
    frames, stats = read_with_index_dir(path, tmp_path / "index", times=(5.0,))
    ref_times, ref_frames = sequential(path)
    assert stats.indexed_files == 1 and len(ref_times) == 30
    assert np.array_equal(frames[0], ref_frames[-1])  # 5 s is past the end: the last frame


@pytest.mark.parametrize("damage", ["garbage", "cut short", "wrong arrays", "unordered", "order"])
def test_a_damaged_index_file_is_rebuilt_with_a_warning(videos, tmp_path, caplog, damage):
    expected, _ = read_with_index_dir(videos["mp4"], tmp_path)
    (stored,) = tmp_path.glob("*.idx")
    if damage == "garbage":
        stored.write_bytes(b"not an index")
    elif damage == "cut short":
        stored.write_bytes(stored.read_bytes()[:-10])
    else:
        arrays = dict(index_store.decode(stored.read_bytes()))
        if damage == "wrong arrays":
            del arrays["key_seek"]
        elif damage == "unordered":
            arrays["pts"] = arrays["pts"][::-1].copy()
        else:  # packets placed past each other: not a permutation of decode order
            arrays["decode_pos"] = np.zeros_like(arrays["decode_pos"])
        stored.write_bytes(index_store.encode(arrays))
    frames, stats = read_with_index_dir(videos["mp4"], tmp_path)
    assert stats.indexed_files == 1 and np.array_equal(frames, expected)
    assert str(stored) in caplog.text or "h264.mp4" in caplog.text
    assert read_with_index_dir(videos["mp4"], tmp_path)[1].indexed_files == 0  # rewritten


def test_an_unwritable_index_dir_warns_once_and_reads_on(videos, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the directory should be")
    reader = PyAVReader(index_dir=blocker / "index")
    for kind in ("mp4", "webm"):
        (frames,) = reader.read(videos[kind], [FrameRequest((0.2,), H, W)])
        assert np.array_equal(frames[0], sequential(videos[kind])[1][5])
    assert caplog.text.count("cannot store packet indexes") == 1


def warmed(reader, path):
    """``reader`` after a first read of ``path`` (which builds its index), with fresh stats."""
    reader.read(path, [FrameRequest((0.0,), 8, 8)])
    reader.stats = type(reader.stats)()
    return reader


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("skip_nonref", [False, True])
def test_packets_read_from_the_file_decode_as_the_demuxed_ones(videos, kind, skip_nonref):
    path = videos[kind]
    times = [*uniform(path, 8), 0.0, sequential(path)[0][-1], 99.0]
    demuxed = PyAVReader(skip_nonref=skip_nonref)  # a first read: the demuxer's path
    warm = warmed(PyAVReader(skip_nonref=skip_nonref), path)
    check_against_sequential(warm, path, times)
    assert warm.stats.file_reads == 1  # MP4 and Matroska keep every packet as it is
    check_against_sequential(demuxed, path, times)
    assert warm.stats.indexed_files == 0 and warm.stats.skipped_packets == 0
    assert (warm.stats.decoded_frames, warm.stats.seeks) == (
        demuxed.stats.decoded_frames,
        demuxed.stats.seeks,
    )
    threaded = warmed(PyAVReader(threads=2, thread_type="FRAME", skip_nonref=skip_nonref), path)
    check_against_sequential(threaded, path, times)


@pytest.mark.parametrize("kind", ["mp4", "mkv", "webm"])
def test_file_reads_leave_never_referenced_pictures_out_before_the_decoder(videos, kind):
    path, times = videos[kind], uniform(videos[kind], 8)
    plain = warmed(PyAVReader(), path)
    skipping = warmed(PyAVReader(skip_nonref=True), path)
    check_against_sequential(skipping, path, times)
    check_against_sequential(plain, path, times)
    left_out = skipping.stats.unreferenced_packets
    # What the decoder would have skipped is exactly what was never fed to it.
    assert left_out == plain.stats.decoded_frames - skipping.stats.decoded_frames
    assert (left_out > 0) == (kind != "webm")  # x264's non-pyramid B-frames; VP9 has none
    assert plain.stats.unreferenced_packets == 0


def test_file_reads_count_the_least_work(videos):
    path = videos["mp4"]
    times = [i * 0.04 for i in (3, 5, 13, 15, 16, 30, 31, 49, 13)]
    reader = warmed(PyAVReader(), path)
    reader.read(path, [FrameRequest(times, H, W)])
    assert reader.stats.file_reads == 1
    assert (reader.stats.decoded_frames, reader.stats.seeks) == (least_work(path, times, False), 5)


def test_streams_whose_packets_are_not_stored_whole_are_demuxed(tmp_path):
    path = write_video(tmp_path / "h264.ts")  # MPEG-TS cuts packets into 188-byte pieces
    reader = warmed(PyAVReader(), path)
    check_against_sequential(reader, path, (0.0, 0.5, 1.1, 1.96))
    assert reader.stats.file_reads == 0
    assert reader.stats.indexed_files == 0 and reader.stats.seeks > 0


def test_file_reads_check_the_resolution_limit(videos):
    reader = warmed(PyAVReader(), videos["mp4"])
    reader.max_pixels = W * H - 1
    with pytest.raises(VideoDecodeError, match="exceeds max_pixels"):
        reader.read(videos["mp4"], [FrameRequest((0.5,), H, W)])


def test_a_file_cut_short_under_its_index_raises_naming_it(videos, tmp_path):
    path = tmp_path / "cut.mp4"
    path.write_bytes(videos["mp4"].read_bytes())
    reader = warmed(PyAVReader(), path)
    stat = path.stat()
    with open(path, "r+b") as f:  # same size and time as indexed, but the data is gone
        f.truncate(stat.st_size // 2)
        f.truncate(stat.st_size)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(VideoDecodeError, match="cut.mp4"):
        reader.read(path, [FrameRequest((1.9,), H, W)])


def test_index_files_round_trip_and_refuse_what_they_did_not_write():
    arrays = {"a": np.arange(5, dtype=np.int64), "b": np.float64(2.5), "c": np.zeros(0, np.uint8)}
    back = index_store.decode(index_store.encode(arrays))
    assert list(back) == ["a", "b", "c"]
    assert all(np.array_equal(back[k], v) and back[k].dtype == v.dtype for k, v in arrays.items())
    data = index_store.encode({"o": np.arange(3)})
    for bad in (b"", data[:-3], data.replace(b"<i8", b"|O8"), data.replace(b"[3]", b"[-1]")):
        with pytest.raises(ValueError):
            index_store.decode(bad)


def test_av1_frames_are_exact_with_skip_nonref_which_it_leaves_off(tmp_path):
    """FFmpeg's AV1 decoder (libdav1d) reads skip_frame once, as it opens: skipping would
    lose a wanted non-reference frame, so the reader does not skip for AV1."""
    path = write_video(tmp_path / "av1.mkv", "libsvtav1", n=40, options={"preset": "12", "g": "16"})
    ref_times, ref_frames = sequential(path)
    decoded = {}
    for skip in (False, True):
        reader = PyAVReader(skip_nonref=skip)
        for i, t in enumerate(ref_times):  # one read per frame: most start at another frame
            (got,) = reader.read(path, [FrameRequest((t,), H, W)])
            assert np.array_equal(got[0], ref_frames[i]), (skip, i)
        decoded[skip] = reader.stats.decoded_frames
    assert decoded[True] == decoded[False]


def in_output_order(path):
    """The frames a full decode outputs, in order, ignoring the timestamps it gives them."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
@pytest.mark.parametrize("skip_nonref", [False, True])
def test_avi_b_frames_are_shown_in_the_order_the_decoder_outputs_them(tmp_path, codec, skip_nonref):
    """AVI stores no presentation times; FFmpeg's guesses are wrong for H.264 B-frames. The
    n-th frame a full decode outputs is shown from n / 25 s, as ffmpeg and players show it."""
    options = None if codec == "libx264" else {"bf": "2", "g": "8", "qscale": "2"}
    path = write_video(tmp_path / f"{codec}.avi", codec, options=options)
    frames = in_output_order(path)
    assert len(frames) == 50 and len({f.tobytes() for f in frames}) == 50
    times = [i * 0.04 + 0.01 for i in range(50)]
    for _ in ("first read", "later read"):
        reader = PyAVReader(skip_nonref=skip_nonref, index_dir=tmp_path / "index")
        for i, t in enumerate(times):
            (got,) = reader.read(path, [FrameRequest((t,), H, W)])
            assert np.array_equal(got[0], frames[i]), i
        (together,) = reader.read(path, [FrameRequest(times[::-1], H, W)])
        assert all(np.array_equal(a, b) for a, b in zip(together, frames[::-1], strict=True))
    assert PyAVReader().probe(path).duration == pytest.approx(2.0, abs=1e-9)
