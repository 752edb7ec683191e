"""Benchmark videos, generated with PyAV and cached: moving textured shapes on a panning field.

Every video is ``seconds`` long at 25 fps (or ``fps``) with realistic motion for the codec
(textured discs moving at different speeds, a panning gradient, mild noise), so motion search
and residuals do real work. ``scene="natural"`` pans over a texture with a natural image's
spectrum instead (1/f^1.5: a downscaled frame costs an encoder about what a photograph does),
and ``bitrate``/``audio`` make a file like a downloaded one (a YouTube-like bitrate, an AAC
track). Files are cached under ``.bench_cache/`` by a name that encodes every parameter; a
changed recipe (``VERSION``) makes new files.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
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
    fps: Fraction = Fraction(FPS)
    scene: str = "shapes"  # or "natural"
    bitrate: int | None = None  # kbit/s (None: crf 23)
    audio: bool = False
    seed: int = 0

    @property
    def name(self) -> str:
        extra = "" if self.fps == FPS else f"-{float(self.fps):.4g}fps"
        extra += "" if self.scene == "shapes" else f"-{self.scene}"
        return f"{self.codec}-gop{self.gop}-{self.height}p{extra}"

    @property
    def filename(self) -> str:
        ext = "webm" if self.codec == "vp9" else "mp4"
        extra = f"_{self.bitrate}k" if self.bitrate else ""
        extra += "_aac" if self.audio else ""
        extra += f"_s{self.seed}" if self.seed else ""
        return f"v{VERSION}_{self.name}_{self.seconds:g}s{extra}.{ext}"


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
        rate = {"b": f"{spec.bitrate}k"} if spec.bitrate else {"crf": "23"}
        return "libx264", {"preset": "ultrafast", **rate, "x264-params": params}
    opts = {"g": str(spec.gop), "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
    return "libvpx-vp9", {**opts, "crf": "32", "b": "0"}


class _Scene:
    """Draws frame i of the scene as yuv420p planes, cheaply (precomputed textures, slices)."""

    def __init__(self, width: int, height: int, seed: int = 0, fps: float = FPS) -> None:
        rng = np.random.default_rng(seed)
        self.fps = fps
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
        t = i / self.fps
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


class _NaturalScene(_Scene):
    """The shapes over a panning texture with a natural image's spectrum (1/f^1.5)."""

    def __init__(self, width: int, height: int, seed: int = 0, fps: float = FPS) -> None:
        super().__init__(width, height, seed, fps)
        self.texture = 128 + 48 * _natural_texture(2 * height, 3 * width, seed)
        chroma = _natural_texture(height, 3 * width, seed + 1) * 24
        self.chroma = (128 + chroma).clip(0, 255).astype(np.uint8)

    def frame(self, i: int) -> np.ndarray:
        planes = super().frame(i)  # the shapes over the panning gradient; the texture under
        t, (w, h) = i / self.fps, (self.w, self.h)
        x = int(w * (1 + 0.9 * np.sin(t / 7))) // 2 * 2
        y = int(h * (0.5 + 0.4 * np.sin(t / 5))) // 2 * 2
        luma = planes[:h].astype(np.float32)
        planes[:h] = (0.3 * luma + 0.7 * self.texture[y : y + h, x : x + w]).clip(0, 255)
        u = self.chroma[y // 2 : y // 2 + h // 2, x // 2 : x // 2 + w // 2]
        v = self.chroma[y // 2 : y // 2 + h // 2, w + x // 2 : w + x // 2 + w // 2]
        planes[h:] = np.concatenate([u.reshape(-1, w), v.reshape(-1, w)])
        return planes


def _natural_texture(height: int, width: int, seed: int) -> np.ndarray:
    """Unit-variance noise whose amplitude falls as 1/f^1.5, as natural images' roughly do."""
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    spectrum = rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)
    spectrum[0, 0] = 0
    image = np.fft.irfft2(spectrum / f**1.5, s=(height, width))
    return ((image - image.mean()) / image.std()).astype(np.float32)


def write(spec: VideoSpec, path: Path) -> Path:
    """Encode ``spec`` to ``path`` (via a temporary name, so an interrupted run leaves nothing)."""
    codec, options = _stream_options(spec)
    tmp = path.with_name(f"tmp_{path.name}")
    kind = _NaturalScene if spec.scene == "natural" else _Scene
    scene = kind(spec.width, spec.height, spec.seed, float(spec.fps))
    time_base = 1 / spec.fps
    with av.open(str(tmp), "w", format="mp4" if codec == "libx264" else None) as out:
        stream = out.add_stream(codec, rate=spec.fps, options=options)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.thread_count = 2
        sound = Tone(out) if spec.audio else None
        for i in range(round(spec.seconds * spec.fps)):
            frame = av.VideoFrame.from_ndarray(scene.frame(i), format="yuv420p")
            frame.pts, frame.time_base = i, time_base
            out.mux(stream.encode(frame))
            if sound is not None:
                sound.until((i + 1) * time_base)
        out.mux(stream.encode())
        if sound is not None:
            out.mux(sound.stream.encode())
    tmp.rename(path)
    return path


class Tone:
    """A quiet two-tone stereo AAC track, encoded alongside the video."""

    RATE = 44100

    def __init__(self, out: av.container.OutputContainer) -> None:
        self.out, self.samples = out, 0
        self.stream = out.add_stream("aac", rate=self.RATE, layout="stereo")

    def until(self, seconds: Fraction) -> None:
        """Encode the track up to ``seconds``."""
        while Fraction(self.samples, self.RATE) < seconds:
            t = (self.samples + np.arange(1024)) / self.RATE
            wave = 0.1 * np.sin(2 * np.pi * 440 * t) + 0.05 * np.sin(2 * np.pi * 97 * t)
            planes = np.stack([wave, wave]).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = self.RATE, self.samples
            self.out.mux(self.stream.encode(frame))
            self.samples += 1024


def ensure(spec: VideoSpec, cache: Path = CACHE) -> Path:
    """The cached file of ``spec``, generated on first use."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / spec.filename
    return path if path.exists() else write(spec, path)
