"""The decoding interface: times in seconds in, resized RGB frames out, or a named failure.

Every reader (:class:`~dkp.data.decoding.pyav_reader.PyAVReader` for video files,
:class:`~dkp.data.decoding.frame_folder.FrameFolderReader` for folders of images) implements
:class:`VideoReader`: ``probe`` says what a video is, ``read`` returns the frame shown at each
requested time. Frame indices and stream timestamps never leave the readers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Protocol

import numpy as np

StrPath = str | os.PathLike
#: A version of a file: (path, mtime_ns, size). A rewritten file is another version.
FileVersion = tuple[str, int, int]

#: Tolerance for the float rounding of a requested time that is exactly a frame's start.
TIME_EPS = 1e-6


class VideoDecodeError(RuntimeError):
    """A video could not be read; str() names the file and the reason."""

    def __init__(self, path: StrPath, reason: str) -> None:
        super().__init__(path, reason)  # args round-trip through pickle (DataLoader workers)
        self.path = os.fspath(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class VideoInfo:
    """What a video is: its frames' duration and count, its header's frame rate and size.

    ``duration`` runs from the first frame's presentation time to the end of the last frame
    (the frames' span, not what a header claims).
    """

    duration: float
    fps: float | None
    width: int
    height: int
    num_frames: int | None


@dataclass(frozen=True)
class FrameRequest:
    """Frames wanted at ``times`` (seconds from the first frame, any order), resized to h x w."""

    times: tuple[float, ...]
    height: int
    width: int

    def __post_init__(self) -> None:
        times = tuple(float(t) for t in self.times)
        if any(t != t for t in times):
            raise ValueError("FrameRequest times must not be NaN")
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"FrameRequest size must be positive, got {self.height}x{self.width}")
        object.__setattr__(self, "times", times)


class VideoReader(Protocol):
    """Decodes frames by time; one uint8 RGB array (len(times), h, w, 3) per request."""

    def probe(self, path: StrPath) -> VideoInfo: ...

    def read(self, path: StrPath, requests: list[FrameRequest]) -> list[np.ndarray]: ...


@dataclass
class DecodeStats:
    """Cumulative work counters of a reader, for tests and benchmarks."""

    decoded_frames: int = 0
    conversions: int = 0  # (frame, output size) pairs converted to RGB and resized
    seeks: int = 0
    skipped_packets: int = 0  # demuxed after a seek that landed before the wanted keyframe
    unreferenced_packets: int = 0  # never-referenced pictures a file read left out (skip_nonref)
    indexed_files: int = 0  # demux passes made to index a file (not found in memory or on disk)
    file_reads: int = 0  # reads that took the packets straight from the file, not the demuxer
    cache_hits: int = 0
    missing_frames: int = 0  # wanted frames the decoder did not output (damaged data; warned)


def file_version(path: StrPath) -> FileVersion:
    """(path, mtime_ns, size) of ``path``: identifies one version of a file for the caches."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise VideoDecodeError(path, exc.strerror or str(exc)) from exc
    return os.fspath(path), st.st_mtime_ns, st.st_size


def reason(exc: Exception) -> str:
    """A short reason for an OS or FFmpeg error."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def empty_outputs(requests: list[FrameRequest]) -> list[np.ndarray]:
    """One uninitialised uint8 RGB array per request, to be filled slot by slot."""
    return [np.empty((len(r.times), r.height, r.width, 3), np.uint8) for r in requests]
