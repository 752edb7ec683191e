"""Benchmark videos, generated with PyAV and cached: moving textured shapes on a panning field.

Every video is ``seconds`` long at 25 fps with realistic motion for the codec (textured
discs moving at different speeds, a panning gradient, mild noise), so motion search and
residuals do real work. Files are cached under ``.bench_cache/`` by a name that encodes
every parameter; a changed recipe (``VERSION``) makes new files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

VERSION = 1
FPS = 25
CACHE = Path(__file__).resolve().parent.parent / ".bench_cache"


@dataclass(frozen=True)
class VideoSpec:
    """One benchmark input: codec family, GOP length (frames) and size."""

    codec: str  # "h264" or "vp9"
    gop: int
    width: int
    height: int
    seconds: float

    @property
    def name(self) -> str:
        return f"{self.codec}-gop{self.gop}-{self.height}p"

    @property
    def filename(self) -> str:
        ext = "webm" if self.codec == "vp9" else "mp4"
        return f"v{VERSION}_{self.name}_{self.seconds:g}s.{ext}"


def specs(seconds: float, heights: tuple[int, ...] = (360, 720)) -> list[VideoSpec]:
    """H.264 with a long (250) and short (30) GOP, and VP9, at each height (16:9)."""
    out = []
    for h in heights:
        w = h * 16 // 9
        out += [
            VideoSpec("h264", 250, w, h, seconds),
            VideoSpec("h264", 30, w, h, seconds),
            VideoSpec("vp9", 125, w, h, seconds),
        ]
    return out


def _stream_options(spec: VideoSpec) -> tuple[str, dict[str, str]]:
    if spec.codec == "h264":
        params = f"keyint={spec.gop}:min-keyint={spec.gop}:scenecut=0:bframes=2:b-adapt=0"
        return "libx264", {"preset": "ultrafast", "crf": "23", "x264-params": params}
    opts = {"g": str(spec.gop), "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
    return "libvpx-vp9", {**opts, "crf": "32", "b": "0"}


class _Scene:
    """Draws frame i of the scene as yuv420p planes, cheaply (precomputed textures, slices)."""

    def __init__(self, width: int, height: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.w, self.h = width, height
        x = np.linspace(0, 6 * np.pi, 3 * width)
        self.field = (96 + 48 * np.sin(x)[None, :] + 24 * np.cos(x / 3)[None, :]).astype(np.float32)
        yy = np.linspace(0, 1, height, dtype=np.float32)[:, None]
        self.vertical = 40 * yy
        self.noise = rng.integers(-4, 5, (height + 64, width + 64), dtype=np.int16)
        r = max(8, height // 8)
        grid = np.mgrid[-r:r, -r:r]
        self.disc = (grid[0] ** 2 + grid[1] ** 2) < r * r
        self.textures = [
            (128 + 100 * np.sign(np.sin(grid[k % 2] / (2 + k)))).astype(np.uint8) for k in range(4)
        ]
        self.paths = rng.uniform(0.2, 1.5, (4, 4))  # speeds and phases of the shapes
        self.r = r
        cw, ch = width // 2, height // 2
        self.u = np.broadcast_to(np.linspace(96, 160, cw, dtype=np.uint8), (ch, cw)).copy()
        self.v = np.broadcast_to(np.linspace(160, 96, ch, dtype=np.uint8)[:, None], (ch, cw))

    def frame(self, i: int) -> np.ndarray:
        t = i / FPS
        pan = int(t * 40) % (2 * self.w)
        y = self.field[:, pan : pan + self.w] + self.vertical
        ny, nx = (7 * i) % 64, (13 * i) % 64
        y = (y + self.noise[ny : ny + self.h, nx : nx + self.w]).clip(0, 255).astype(np.uint8)
        r = self.r
        for k, (sx, sy, px, py) in enumerate(self.paths):
            cx = int((0.5 + 0.4 * np.sin(sx * t + px)) * (self.w - 2 * r))
            cy = int((0.5 + 0.4 * np.cos(sy * t + py)) * (self.h - 2 * r))
            patch = y[cy : cy + 2 * r, cx : cx + 2 * r]
            patch[self.disc] = np.roll(self.textures[k], i, axis=k % 2)[self.disc]
        u = np.roll(self.u, i, axis=1)
        return np.concatenate([y, u.reshape(-1, self.w), self.v.reshape(-1, self.w)])


def write(spec: VideoSpec, path: Path) -> Path:
    """Encode ``spec`` to ``path`` (via a temporary name, so an interrupted run leaves nothing)."""
    codec, options = _stream_options(spec)
    tmp = path.with_name(f"tmp_{path.name}")
    scene = _Scene(spec.width, spec.height)
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream(codec, rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.thread_count = 2
        for i in range(round(spec.seconds * FPS)):
            frame = av.VideoFrame.from_ndarray(scene.frame(i), format="yuv420p")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    tmp.rename(path)
    return path


def ensure(spec: VideoSpec, cache: Path = CACHE) -> Path:
    """The cached file of ``spec``, generated on first use."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / spec.filename
    return path if path.exists() else write(spec, path)
