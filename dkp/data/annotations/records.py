"""The record type every dataset reader produces, and the safe lookup of video files."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mkv", ".webm", ".avi", ".mov")
SUBSETS: tuple[str, ...] = ("training", "validation", "testing")
# The longest video an annotation may claim: beyond a day it is an error (1e9 s, a unit slip).
MAX_DURATION = 24 * 3600.0


class AnnotationError(ValueError):
    """An annotation file or one of its entries is malformed; the message names file and entry."""


@dataclass(frozen=True)
class VideoRecord:
    """One video: where it is, how long it is (seconds) and which classes it shows.

    ``labels`` are class indices into the dataset's class list (several for multi-label
    videos, none for unlabelled test videos). ``segments`` are the annotated action
    intervals in seconds where the format provides them (ActivityNet does).
    """

    video_id: str
    path: Path
    duration: float
    labels: tuple[int, ...]
    subset: str
    fps: float | None = None
    segments: tuple[tuple[float, float], ...] = ()


@dataclass
class RecordSet:
    """What a dataset reader returns: the class list, the usable records and what was left out."""

    classes: list[str]
    records: list[VideoRecord]
    missing: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def summary(self) -> str:
        """One line for the log: how many records were kept, missing on disk, or skipped."""
        line = f"{len(self.records)} videos, {self.num_classes} classes"
        if self.missing:
            shown = ", ".join(self.missing[:5]) + (", ..." if len(self.missing) > 5 else "")
            line += f"; {len(self.missing)} missing on disk ({shown})"
        if self.skipped:
            line += f"; {len(self.skipped)} skipped as malformed"
        return line


def check_video_id(video_id: str, source: str) -> None:
    """Refuse ids that could name a file outside the video root (``../x``, ``/etc/x``, ``a/b``)."""
    if (
        not video_id
        or video_id in (".", "..")
        or "/" in video_id
        or "\\" in video_id
        or "\x00" in video_id
        or os.path.isabs(video_id)
    ):
        raise AnnotationError(f"{source}: video id {video_id!r} is not a plain file name")


def find_video(
    root: Path, stems: list[str], extensions: tuple[str, ...] = VIDEO_EXTENSIONS
) -> Path | None:
    """Return the first existing ``root/<stem><ext>`` (stems tried in order), or None.

    Stems must already be checked with :func:`check_video_id`, so the candidate names stay
    inside ``root``; symlinks inside the root (datasets spread over disks) are followed.
    """
    for stem in stems:
        for ext in extensions:
            candidate = root / f"{stem}{ext}"
            if candidate.is_file():
                return candidate
    return None


def check_duration(duration: object, where: str) -> float:
    """``duration`` as seconds if it is a number in (0, MAX_DURATION], else AnnotationError."""
    if (
        isinstance(duration, bool)
        or not isinstance(duration, (int, float))
        or not math.isfinite(duration)
        or duration <= 0
    ):
        raise AnnotationError(f"{where}: duration {duration!r} is not a positive number")
    if duration > MAX_DURATION:
        raise AnnotationError(
            f"{where}: duration {duration!r} s is over {MAX_DURATION:g} s (a day); not a video"
        )
    return float(duration)
