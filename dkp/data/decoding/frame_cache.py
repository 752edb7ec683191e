"""An LRU cache of decoded, resized frames, and how readers fill requests from it."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from dkp.data.decoding.api import DecodeStats, FileVersion, FrameRequest

#: (path, mtime_ns, size, frame id, height, width)
CacheKey = tuple[str, int, int, int, int, int]
#: Where each wanted frame goes: frame id -> (height, width) -> [(request, slot), ...].
Wanted = dict[int, dict[tuple[int, int], list[tuple[int, int]]]]


class FrameCache:
    """LRU cache of decoded, resized frames, bounded in bytes.

    Keys are (path, mtime_ns, size, frame id, height, width), so a file that is rewritten
    never serves stale frames. Cached arrays are read-only; readers copy out of them.
    """

    def __init__(self, max_bytes: int = 512 * 2**20) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._frames: OrderedDict[CacheKey, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._frames)

    def get(self, key: CacheKey) -> np.ndarray | None:
        """The cached frame for ``key`` (marking it most recently used), or None."""
        frame = self._frames.get(key)
        if frame is not None:
            self._frames.move_to_end(key)
        return frame

    def put(self, key: CacheKey, frame: np.ndarray) -> None:
        """Store ``frame``, evicting the least recently used frames beyond the byte bound."""
        if frame.nbytes > self.max_bytes:
            return
        old = self._frames.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        frame.setflags(write=False)
        self._frames[key] = frame
        self.nbytes += frame.nbytes
        while self.nbytes > self.max_bytes:
            _, evicted = self._frames.popitem(last=False)
            self.nbytes -= evicted.nbytes

    def clear(self) -> None:
        """Drop every cached frame."""
        self._frames.clear()
        self.nbytes = 0


KeyOf = Callable[[int, int, int], CacheKey]  # (frame id, height, width) -> key


def key_in(version: FileVersion) -> KeyOf:
    """Cache keys of the frames of one file version."""
    return lambda frame_id, h, w: (*version, frame_id, h, w)


def serve_cached(
    cache: FrameCache | None,
    key_of: KeyOf,
    requests: list[FrameRequest],
    frame_ids: list[np.ndarray],
    outputs: list[np.ndarray],
    stats: DecodeStats,
) -> Wanted:
    """Fill the slots the cache can serve; return the rest grouped by frame and size."""
    wanted: Wanted = {}
    for r, (request, ids) in enumerate(zip(requests, frame_ids, strict=True)):
        h, w = request.height, request.width
        for slot, frame_id in enumerate(ids.tolist()):
            hit = cache.get(key_of(frame_id, h, w)) if cache is not None else None
            if hit is not None:
                outputs[r][slot] = hit
                stats.cache_hits += 1
            else:
                wanted.setdefault(frame_id, {}).setdefault((h, w), []).append((r, slot))
    return wanted


def store_cached(
    cache: FrameCache | None, key_of: KeyOf, wanted: Wanted, outputs: list[np.ndarray]
) -> None:
    """Put the frames just decoded for ``wanted`` into the cache."""
    if cache is None:
        return
    for frame_id, sizes in wanted.items():
        for (h, w), slots in sizes.items():
            r, slot = slots[0]
            cache.put(key_of(frame_id, h, w), outputs[r][slot].copy())
