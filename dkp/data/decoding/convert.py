"""Decoded frames to RGB at each wanted size, once per (frame, size), inside swscale."""

from __future__ import annotations

import numpy as np
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter

from dkp.data.decoding.api import DecodeStats


class FrameConverter:
    """Converts a decoded frame once per wanted size and copies it into its output slots.

    One reformatter per output size keeps its swscale context between frames; a fresh one
    per frame (``frame.to_ndarray(width=..)``) spends most of a small conversion setting up.
    ``threads`` as the decoder's: swscale's default (one per core) makes a small frame's
    conversion 4x slower on 2 cores, and DataLoader workers already use the cores. Every
    conversion is counted in ``stats.conversions``.
    """

    def __init__(self, threads: int, stats: DecodeStats) -> None:
        self.threads = threads
        self.stats = stats
        self._reformatters: dict[tuple[int, int], VideoReformatter] = {}

    def __getstate__(self) -> dict:
        """Pickled (to DataLoader workers, spawned DDP ranks) without its swscale contexts."""
        return {**self.__dict__, "_reformatters": {}}

    def deliver(
        self,
        frame: VideoFrame,
        sizes: dict[tuple[int, int], list[tuple[int, int]]],
        outputs: list[np.ndarray],
    ) -> None:
        """Write ``frame`` at each size of ``sizes`` into its ``(request, slot)`` places."""
        for (h, w), slots in sizes.items():
            reformatter = self._reformatters.get((h, w))
            if reformatter is None:
                reformatter = self._reformatters[(h, w)] = VideoReformatter()
            converted = reformatter.reformat(
                frame, width=w, height=h, format="rgb24", threads=self.threads
            )
            rgb = converted.to_ndarray()
            self.stats.conversions += 1
            for r, slot in slots:
                outputs[r][slot] = rgb
