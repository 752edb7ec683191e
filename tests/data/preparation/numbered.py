"""Generated videos whose frames carry their own number, and reading that number back."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.data.decoding.corpus import H, W, pattern

BITS = 8  # corpus.pattern writes a frame's number as 8 blocks, black or white, on top


def frame_number(rgb: np.ndarray) -> int:
    """The number a :func:`corpus.pattern` frame carries, read from its blocks at any size."""
    height, width = rgb.shape[:2]
    row = rgb[height // 4, :, :].mean(axis=1)
    centres = ((np.arange(BITS) + 0.5) * width / BITS).astype(int)
    return sum(1 << bit for bit, x in enumerate(centres) if row[x] > 128)


def write_numbered(
    path: Path,
    pts: list[int],
    time_base: Fraction,
    rate: Fraction = Fraction(25),
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    audio: bool = False,
    pix_fmt: str = "yuv420p",
) -> Path:
    """Frame i (its number in its pixels) at ``pts[i]`` x ``time_base``; with ``audio``, an AAC
    track alongside, as downloaded videos have."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, options=options or {})
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        stream.time_base = stream.codec_context.time_base = time_base
        sound = out.add_stream("aac", rate=16000, layout="mono") if audio else None
        for i, stamp in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(pattern(i), format="rgb24")
            frame.pts, frame.time_base = stamp, time_base
            out.mux(stream.encode(frame))
            if sound is not None:
                samples = av.AudioFrame.from_ndarray(
                    np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
                )
                samples.sample_rate, samples.pts = 16000, i * 1024
                out.mux(sound.encode(samples))
        out.mux(stream.encode())
        if sound is not None:
            out.mux(sound.encode())
    return path
