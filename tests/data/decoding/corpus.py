"""A corpus of bad and unusual video files, generated: each a (file, what the reader must do)."""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.stream import Disposition

W, H = 64, 48
X264 = {"x264-params": "keyint=8:min-keyint=8:scenecut=0:bframes=0", "crf": "12"}
MS = Fraction(1, 1000)


def pattern(i: int) -> np.ndarray:
    """A frame that names its index: bit blocks on top, a distinct gray level below."""
    img = np.zeros((H, W, 3), np.uint8)
    for bit in range(8):
        img[: H // 2, bit * W // 8 : (bit + 1) * W // 8] = 255 * ((i >> bit) & 1)
    img[H // 2 :] = (37 * i) % 256
    return img


def write_video(
    path: Path,
    n: int = 25,
    pts_ms: list[int] | None = None,
    rotation: int | None = None,
    muxer_options: dict[str, str] | None = None,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    cover: bool = False,
) -> Path:
    """Encode n pattern frames at 25 fps (or at ``pts_ms`` milliseconds); with ``cover``, an
    MJPEG cover picture (an attached picture) follows as a second video stream."""
    with av.open(str(path), "w", options=muxer_options or {}) as out:
        default = X264 if codec == "libx264" else {}
        stream = out.add_stream(codec, rate=25, options=default if options is None else options)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        if pts_ms is not None:
            stream.time_base = stream.codec_context.time_base = MS
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if cover:
            picture = out.add_stream("mjpeg", rate=1)
            picture.width, picture.height, picture.pix_fmt = W, H, "yuvj420p"
            picture.disposition = Disposition.attached_pic
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(pattern(i), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], MS
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if cover:
            image = av.VideoFrame.from_ndarray(pattern(255), format="rgb24")
            out.mux(picture.encode(image.reformat(format="yuvj420p")))
            out.mux(picture.encode())
    return path


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of the ISO-BMFF boxes in ``data[start:end]``."""
    boxes = []
    while start < end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        boxes.append((kind, start, size))
        start += size
    return boxes


def cover_first(path: Path) -> Path:
    """Move an MP4's ``udta`` box (its cover picture) before its tracks, so that the cover is
    the first stream, as tagging tools leave downloaded videos (``moov`` follows the media
    data, so no offset changes)."""
    data = path.read_bytes()
    ((_, start, size),) = [b for b in _boxes(data, 0, len(data)) if b[0] == b"moov"]
    children = sorted(_boxes(data, start + 8, start + size), key=lambda b: b[0] != b"udta")
    moov = b"".join(data[o : o + n] for _, o, n in children)
    path.write_bytes(data[: start + 8] + moov + data[start + size :])
    return path


def lie_about_duration(path: Path, seconds: float = 36000.0) -> Path:
    """Make a Matroska file's header claim ``seconds``."""
    data = path.read_bytes()
    at = data.index(b"\x44\x89\x88") + 3  # the Duration element: an 8-byte float, in ms
    path.write_bytes(data[:at] + struct.pack(">d", seconds * 1000) + data[at + 8 :])
    return path


def packets(path: Path) -> list[tuple[int, int, int]]:
    """(pts, file offset, size) of each video packet, in decode order."""
    with av.open(str(path)) as container:
        return [(p.pts, p.pos, p.size) for p in container.demux(video=0) if p.size]


def cut_in_packet(path: Path, number: int) -> Path:
    """Cut a file in the middle of packet ``number``'s data (decode order), as an interrupted
    download leaves it."""
    _, pos, size = packets(path)[number]
    path.write_bytes(path.read_bytes()[: pos + size // 2])
    return path


def damage_packet(path: Path, number: int) -> Path:
    """Overwrite packet ``number``'s data (decode order) with noise."""
    _, pos, size = packets(path)[number]
    data = bytearray(path.read_bytes())
    data[pos : pos + size] = np.random.default_rng(0).integers(0, 256, size, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mp2", rate=16000, layout="mono")
        for _ in range(10):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1152), np.int16), format="s16", layout="mono"
            )
            frame.sample_rate = 16000
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def huge_resolution(path: Path, side: int = 16000) -> Path:
    """A raw YUV4MPEG file whose header declares side x side frames (it holds three tiny ones)."""
    small = write_video(path.with_suffix(".small.y4m"), n=3, codec="rawvideo")
    head, rest = small.read_bytes().split(b"\n", 1)
    small.unlink()
    head = head.replace(f"W{W} ".encode(), f"W{side} ".encode())
    path.write_bytes(head.replace(f"H{H} ".encode(), f"H{side} ".encode()) + b"\n" + rest)
    return path


BROKEN = {  # name: (how to make it, a phrase its VideoDecodeError must carry)
    "zero_bytes.mp4": (lambda p: p.write_bytes(b""), ""),
    "not_a_video.mp4": (lambda p: p.write_text("this is not a video\n" * 20), ""),
    "truncated.mp4": (
        lambda p: p.write_bytes(write_video(p, n=10).read_bytes()[:1500]),
        "",
    ),
    "audio_only.mkv": (audio_only, "no video stream"),
    "huge.y4m": (huge_resolution, "exceeds max_pixels"),
}


def make_broken(root: Path) -> dict[str, tuple[Path, str]]:
    """Write every broken file under ``root``: name -> (path, phrase the error must carry)."""
    out = {}
    for name, (make, phrase) in BROKEN.items():
        path = root / name
        make(path)
        out[name] = (path, phrase)
    return out


def sequential(path: Path) -> tuple[list[float], list[np.ndarray]]:
    """Every frame of a full decode (as stored, at W x H) and its time from the first frame,
    of the first video stream that is not an attached picture."""
    with av.open(str(path)) as container:
        videos = container.streams.video
        stream = next(s for s in videos if not s.disposition & Disposition.attached_pic)
        decoded = [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
        tb = stream.time_base
    return [float((pts - decoded[0][0]) * tb) for pts, _ in decoded], [a for _, a in decoded]


def shown_at(times: list[float], t: float) -> int:
    """Index of the frame a sequential decode shows at time t."""
    return max([i for i, start in enumerate(times) if start <= t + 1e-6], default=0)
