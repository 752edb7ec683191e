"""Datasets shipped as a folder of image frames per video (Something-Something v1, ...)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

from dkp.data.decoding.api import (
    TIME_EPS,
    DecodeStats,
    FrameRequest,
    StrPath,
    VideoDecodeError,
    VideoInfo,
    empty_outputs,
    file_version,
    reason,
)
from dkp.data.decoding.frame_cache import CacheKey, FrameCache, serve_cached, store_cached

_BILINEAR = Image.Resampling.BILINEAR


def _natural_key(path: Path) -> list[int | str]:
    """Sort key putting img_2 before img_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class FrameFolderReader:
    """Reads datasets shipped as a folder of image frames per video; frame i shows from i/fps."""

    def __init__(self, fps: float, cache: FrameCache | None = None, pattern: str = "*.jpg") -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = fps
        self.cache = cache
        self.pattern = pattern
        self.stats = DecodeStats()

    def probe(self, path: StrPath) -> VideoInfo:
        """Duration, rate, size (of the first image) and count of the frames in the folder."""
        files = self._files(path)
        try:
            with Image.open(files[0]) as image:
                width, height = image.size
        except (OSError, Image.DecompressionBombError) as exc:
            raise VideoDecodeError(files[0], reason(exc)) from exc
        return VideoInfo(len(files) / self.fps, self.fps, width, height, len(files))

    def read(self, path: StrPath, requests: list[FrameRequest]) -> list[np.ndarray]:
        """The frames shown at each request's times, resized; one array per request."""
        files = self._files(path)
        outputs = empty_outputs(requests)
        last = len(files) - 1
        frame_ids = [
            np.floor((np.asarray(r.times) + TIME_EPS) * self.fps).clip(0, last).astype(np.int64)
            for r in requests
        ]
        versions = {i: file_version(files[i]) for ids in frame_ids for i in set(ids.tolist())}

        def cache_key(i: int, h: int, w: int) -> CacheKey:
            return (*versions[i], i, h, w)

        wanted = serve_cached(self.cache, cache_key, requests, frame_ids, outputs, self.stats)
        for i, sizes in wanted.items():
            image = self._decode(files[i])
            for (h, w), slots in sizes.items():
                # Pillow's bilinear widens its kernel when downscaling, so it antialiases.
                resized = image if image.size == (w, h) else image.resize((w, h), _BILINEAR)
                rgb = np.asarray(resized)
                self.stats.conversions += 1
                for r, slot in slots:
                    outputs[r][slot] = rgb
        store_cached(self.cache, cache_key, wanted, outputs)
        return outputs

    def _files(self, path: StrPath) -> list[Path]:
        folder = Path(path)
        if not folder.is_dir():
            raise VideoDecodeError(path, "no such frame folder")
        files = sorted((f for f in folder.glob(self.pattern) if f.is_file()), key=_natural_key)
        if not files:
            raise VideoDecodeError(path, f"no frames matching {self.pattern!r}")
        return files

    def _decode(self, file: Path) -> Image.Image:
        try:
            with Image.open(file) as image:
                rgb = image.convert("RGB")
        except (OSError, Image.DecompressionBombError) as exc:
            raise VideoDecodeError(file, reason(exc)) from exc
        self.stats.decoded_frames += 1
        return rgb
