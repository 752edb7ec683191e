"""The manifest of a prepared copy: which rendition stands for which original, and how they
were made.

``manifest.json`` at the top of the copy records the settings (:class:`RenditionSettings`) and,
per original (by its path under the dataset's root, so both may move), the rendition's path
in the copy and the original's size and mtime when it was made. The data module reads it for
``data.prepared``: a video is read from its rendition when the manifest has one and the
original's size has not changed since; otherwise from the original, named in the log.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from dkp.data.annotations.records import RecordSet
from dkp.runtime.atomic import write_json

log = logging.getLogger(__name__)

FORMAT = "dkp-data prepared copy"
VERSION = 1
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class RenditionSettings:
    """How renditions are encoded: H.264 (libx264) at ``short_side`` pixels on the short side
    (never upscaled), a keyframe every ``gop`` frames (1: every frame), no B-frames, ``crf``
    quality, x264's ``preset`` and ``tune``; no audio; the index (moov) at the front."""

    short_side: int = 224
    gop: int = 1
    crf: int = 26
    preset: str = "veryfast"
    tune: str | None = "fastdecode"

    def validate(self) -> None:
        """ValueError naming the first setting out of range."""
        if not 16 <= self.short_side <= 4320:
            raise ValueError(f"short_side: {self.short_side} is not in 16..4320")
        if not 1 <= self.gop <= 1000:
            raise ValueError(f"gop: {self.gop} is not in 1..1000")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf: {self.crf} is not in 0..51")
        presets = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow")
        if self.preset not in presets:
            raise ValueError(f"preset: {self.preset!r} is not one of {', '.join(presets)}")


@dataclass
class Rendition:
    """One original's entry: its rendition (relative to the copy) or why it has none."""

    rendition: str
    size: int  # the original's, when it was prepared
    mtime_ns: int
    error: str = ""
    bytes: int = 0
    frames: int = 0
    duration: float = 0.0
    width: int = 0
    height: int = 0
    seconds: float = 0.0  # what making it took (wall clock)
    cpu_seconds: float = 0.0  # the making process's CPU time (free of other load)


@dataclass
class Manifest:
    """A prepared copy's settings and entries (original's key -> :class:`Rendition`)."""

    settings: RenditionSettings
    entries: dict[str, Rendition] = field(default_factory=dict)
    root: str | None = None  # the dataset root the keys are relative to, when made

    def save(self, folder: str | os.PathLike) -> None:
        write_json(
            Path(folder) / MANIFEST,
            {
                "format": FORMAT,
                "version": VERSION,
                "settings": asdict(self.settings),
                "root": self.root,
                "videos": {key: asdict(r) for key, r in self.entries.items()},
            },
            indent=1,
        ).chmod(0o644)  # a copy others read (a temporary file is the owner's only)

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Manifest:
        """The manifest of the copy in ``folder``; ValueError/FileNotFoundError naming it."""
        path = Path(folder) / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file (is {folder} a prepared copy?)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT or data.get("version") != VERSION:
                raise ValueError(f"not a {FORMAT} manifest (version {VERSION})")
            return cls(
                RenditionSettings(**data["settings"]),
                {k: Rendition(**v) for k, v in data["videos"].items()},
                data["root"],
            )
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{path}: not a usable manifest ({err})") from None


def source_key(path: str | os.PathLike, root: str | os.PathLike | None) -> str:
    """How a manifest names an original: its path under ``root`` (POSIX separators), or its
    absolute path when it lies elsewhere."""
    path = os.path.abspath(path)
    if root is not None:
        relative = os.path.relpath(path, os.path.abspath(root))
        if not relative.startswith(os.pardir):
            return Path(relative).as_posix()
    return path


def rendition_name(key: str) -> str:
    """Where the rendition of the original named ``key`` goes in the copy: at the key, ``.mp4``
    appended unless it ends so (``videos/x.avi`` -> ``videos/x.avi.mp4``: no two originals
    share one; an original outside the root goes under its absolute path's parts)."""
    relative = key.lstrip("/")
    return relative if relative.endswith(".mp4") else f"{relative}.mp4"


def with_renditions(
    records: RecordSet, folder: str | os.PathLike, manifest: Manifest, root: str | None, split: str
) -> RecordSet:
    """``records`` reading each video from its rendition in ``folder``; originals without one,
    or changed since, are read as they are and named in the log."""
    kept, unprepared = [], []
    for record in records.records:
        entry = manifest.entries.get(source_key(record.path, root))
        target = Path(folder) / entry.rendition if entry is not None else None
        if entry is None or entry.error or not target.is_file():
            unprepared.append((record, entry.error if entry is not None else "not prepared"))
            kept.append(record)
        elif _size(record.path) not in (None, entry.size):
            unprepared.append((record, "changed since it was prepared"))
            kept.append(record)
        else:
            kept.append(replace(record, path=target))
    for record, why in unprepared:
        log.warning("%s split: reading %s from the original (%s)", split, record.video_id, why)
    log.info(
        "%s split: %d of %d videos read from the prepared copy %s",
        split,
        len(kept) - len(unprepared),
        len(kept),
        folder,
    )
    return RecordSet(records.classes, kept, records.missing, records.skipped)


def _size(path: str | os.PathLike) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None
