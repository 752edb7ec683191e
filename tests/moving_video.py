"""A generated test video: a bright bar sweeping over a horizontal ramp, encoded with PyAV."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np


def moving_pattern(count: int, height: int = 48, width: int = 64) -> np.ndarray:
    """``count`` RGB frames ``(count, height, width, 3)``: a ramp left to right (so every
    column differs) and a white bar one column further right in each frame."""
    ramp = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    frames = np.broadcast_to(ramp, (count, height, width, 3)).astype(np.uint8).copy()
    for i in range(count):
        frames[i, :, (2 * i) % width] = 255
        frames[i, :, :, 1] = (40 * i) % 256  # the green channel tells frames apart
    return frames


def encode(
    frames: np.ndarray,
    fps: int = 10,
    path: Path | None = None,
    container: str = "mp4",
    codec: str = "libx264",
) -> bytes:
    """``frames`` encoded (near lossless) in ``container``; written to ``path`` if given."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "1", "preset": "ultrafast"}
        else:
            stream.bit_rate = 4_000_000
        for array in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        out.mux(stream.encode(None))
    data = buffer.getvalue()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return data
