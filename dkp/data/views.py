"""Multi-view testing: each evaluated video scored on k temporal clips x 1 or 3 spatial crops.

As TSM (``--test_crops 3 --twice_sample``), MMAction2 (``num_clips``, ``ThreeCrop``) and
Uni-AdaFocus' n-view evaluation do. A temporal clip moves every segment's sample time
(:func:`~dkp.data.sampling.frame_times.clip_times`: clip j of k samples each segment at
``(j + 0.5) / k`` of its length). Three spatial crops resize the frame, aspect kept, so that
it covers the model's input size, and cut three input-size crops at the start, the centre and
the end of its long side; one crop is the single view every other path uses (the whole frame
resized to the input size). Views come clip by clip, crops inside a clip; a video's scores
are averaged over them and its cost is the sum of what ran on each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

CROPS = (1, 3)


@dataclass(frozen=True)
class Views:
    """How many temporal ``clips`` and spatial ``crops`` (1 or 3) each video is scored on."""

    clips: int = 1
    crops: int = 1

    def __post_init__(self) -> None:
        clips = self.clips
        if isinstance(clips, bool) or not isinstance(clips, int) or clips < 1:
            raise ValueError(f"views.clips: must be an integer >= 1, got {clips!r}")
        if isinstance(self.crops, bool) or self.crops not in CROPS:
            raise ValueError(f"views.crops: must be 1 or 3, got {self.crops!r}")

    @classmethod
    def of(cls, config: Views | Mapping[str, Any] | None) -> Views:
        """From a config mapping (``{clips: k, crops: 1|3}``), a :class:`Views` or None (one)."""
        if config is None or isinstance(config, Views):
            return config or cls()
        unknown = set(config) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"views: unknown option(s) {sorted(unknown)}; use clips and crops")
        return cls(**config)

    @property
    def count(self) -> int:
        """Views per video."""
        return self.clips * self.crops

    @property
    def label(self) -> str:
        """ "2 clips x 3 crops", for series names and logs."""
        return f"{_counted(self.clips, 'clip')} x {_counted(self.crops, 'crop')}"


def _counted(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n > 1 else ''}"


def cover_size(frame: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """The (height, width) a ``frame`` of (height, width) is resized to, aspect kept, so that
    it just covers ``size``: the short side (relative to ``size``) at the input size."""
    scale = max(size[0] / frame[0], size[1] / frame[1])
    return max(size[0], round(frame[0] * scale)), max(size[1], round(frame[1] * scale))


def three_crops(frames: np.ndarray, size: tuple[int, int]) -> list[np.ndarray]:
    """Three ``size`` crops ``(N, h, w, 3)`` of ``frames`` ``(N, H, W, 3)``: start, centre and
    end of the axis with more room, centred on the other (MMAction2's ThreeCrop)."""
    (height, width), (h, w) = frames.shape[1:3], size
    if height < h or width < w:
        raise ValueError(f"frames of {height}x{width} cannot give {h}x{w} crops")
    room_y, room_x = height - h, width - w
    along_x = room_x >= room_y
    crops = []
    for part in (0, 1, 2):
        x = part * room_x // 2 if along_x else room_x // 2
        y = room_y // 2 if along_x else part * room_y // 2
        crops.append(np.ascontiguousarray(frames[:, y : y + h, x : x + w]))
    return crops
