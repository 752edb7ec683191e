"""Kinetics-400 official CSVs, and Mini-Kinetics (lists of video ids over them), to records.

A CSV has the header ``label,youtube_id,time_start,time_end,split[,is_cc]`` (the test CSV
may lack ``label``: its videos are unlabelled). Each clip is found under the video root as
``<youtube_id>_<start:06d>_<end:06d>.<ext>`` or ``<youtube_id>.<ext>``, directly or in a
per-class subfolder ``<label>/`` (or ``<label with _ for spaces>/``), as copies are laid out.

Classes: Kinetics-400's are the sorted unique labels of the *train* CSV, so every split
indexes them the same way; Mini-Kinetics' are the sorted labels of the videos in its train
list. A clip's duration is ``time_end - time_start`` (10 s for almost all) unless
``probe_durations`` reads the real one from the file (some downloaded clips are shorter).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dkp.data.annotations.collector import (
    UNKNOWN,
    Collector,
    check_options,
    default_prober,
    find_video_in,
    numbered_lines,
)
from dkp.data.annotations.records import (
    VIDEO_EXTENSIONS,
    AnnotationError,
    RecordSet,
    VideoRecord,
    check_duration,
    check_video_id,
)

SPLIT_SUBSETS = {"train": "training", "val": "validation", "test": "testing"}
REQUIRED_COLUMNS = ("youtube_id", "time_start", "time_end", "split")

OnBad = Callable[[str, AnnotationError], None]


@dataclass(frozen=True)
class KineticsClip:
    """One CSV row: a trimmed clip of a YouTube video, its label (None if unlabelled)."""

    youtube_id: str
    label: str | None
    start: float
    end: float
    subset: str
    line: int = 0  # where the CSV lists it

    @property
    def stems(self) -> list[str]:
        """File names (without extension) the clip is stored under, most specific first."""
        return [f"{self.youtube_id}_{int(self.start):06d}_{int(self.end):06d}", self.youtube_id]


def _raise(_entry: str, err: AnnotationError) -> None:
    raise err


def _ignore(_entry: str, _err: AnnotationError) -> None:
    """For class lists: a malformed row is reported by the split that reads it as records."""


def _clip(row: dict[str, str], where: str, line: int) -> KineticsClip:
    youtube_id = (row.get("youtube_id") or "").strip()
    check_video_id(youtube_id, where)
    try:
        start, end = float(row["time_start"]), float(row["time_end"])
    except (TypeError, ValueError):
        raise AnnotationError(
            f"{where}: time_start/time_end {row.get('time_start')!r}, {row.get('time_end')!r}"
            " are not numbers"
        ) from None
    if not 0 <= start < end:
        raise AnnotationError(f"{where}: time_end {end} is not after time_start {start}")
    check_duration(end - start, where)
    split = (row.get("split") or "").strip()
    if split not in SPLIT_SUBSETS:
        raise AnnotationError(f"{where}: split {split!r} is not one of {list(SPLIT_SUBSETS)}")
    label = row.get("label")
    if label is not None:
        label = label.strip()
        if not label:
            raise AnnotationError(f"{where}: empty label")
    return KineticsClip(youtube_id, label, start, end, SPLIT_SUBSETS[split], line)


def read_kinetics_csv(path: str | Path, on_bad: OnBad = _raise) -> dict[str, KineticsClip]:
    """The clips of a Kinetics CSV by youtube id; a malformed row goes to ``on_bad``.

    ``on_bad(youtube_id_or_line, error)`` receives an error naming the file and line; by
    default it is raised.
    """
    path = Path(path)
    clips: dict[str, KineticsClip] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise AnnotationError(
                    f"{path}: line 1: header {reader.fieldnames} lacks {missing} "
                    "(expected label,youtube_id,time_start,time_end,split)"
                )
            for row in reader:
                where = f"{path}: line {reader.line_num}"
                try:
                    if None in row or None in row.values():
                        raise AnnotationError(f"{where}: expected {len(reader.fieldnames)} fields")
                    clip = _clip(row, where, reader.line_num)
                    if clip.youtube_id in clips:
                        raise AnnotationError(f"{where}: youtube_id {clip.youtube_id!r} repeated")
                except AnnotationError as err:
                    on_bad(row.get("youtube_id") or where, err)
                    continue
                clips[clip.youtube_id] = clip
    except UnicodeDecodeError as err:
        raise AnnotationError(f"{path}: not UTF-8 text ({err})") from err
    return clips


def kinetics_classes(train_csv: str | Path) -> list[str]:
    """Kinetics classes: the sorted unique labels of the train CSV's well-formed rows."""
    return sorted({c.label for c in read_kinetics_csv(train_csv, _ignore).values() if c.label})


class _ClipFinder:
    """Finds a clip's file in the video root or its per-class subfolder."""

    def __init__(self, root: Path, extensions: tuple[str, ...]) -> None:
        if not root.is_dir():
            raise FileNotFoundError(f"video root {root} does not exist")
        self.root = root
        self.extensions = extensions
        self.subfolders = {p.name for p in root.iterdir() if p.is_dir()}

    def __call__(self, clip: KineticsClip) -> Path | None:
        names = [clip.label, clip.label.replace(" ", "_")] if clip.label else []
        folders = [self.root / n for n in dict.fromkeys(names) if n in self.subfolders]
        return find_video_in([*folders, self.root], clip.stems, self.extensions)


def _collect(
    clips: list[tuple[str, KineticsClip]], finder: _ClipFinder, collector: Collector, probe: bool
) -> None:
    """Records of ``clips`` (each with where it was listed) into ``collector``; ``probe``
    leaves their durations unknown, for the collector to probe."""
    classes = collector.result.classes
    index = {name: i for i, name in enumerate(classes)}
    for where, clip in clips:
        if clip.label is not None and clip.label not in index:
            collector.reject(
                clip.youtube_id,
                AnnotationError(f"{where}: label {clip.label!r} is not one of the classes"),
            )
            continue
        video = finder(clip)
        record = None
        if video is not None:
            record = VideoRecord(
                video_id=clip.youtube_id,
                path=video,
                duration=UNKNOWN if probe else clip.end - clip.start,
                labels=(index[clip.label],) if clip.label else (),
                subset=clip.subset,
            )
        collector.add(record, clip.youtube_id)


def load_kinetics(
    annotation_file: str | Path,
    video_root: str | Path,
    class_file: str | Path | None = None,
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS,
    probe_durations: bool = False,
    probe_workers: int = 8,
    on_error: str = "raise",
) -> RecordSet:
    """Records of a Kinetics CSV whose clips exist under ``video_root``.

    ``class_file`` is the train CSV the class list comes from (default: ``annotation_file``
    itself, right for the train split). A malformed row or a label outside the class list
    raises :class:`AnnotationError` naming file and line, or with ``on_error="skip"`` is
    logged and listed in ``RecordSet.skipped``.
    """
    check_options(on_error)
    path = Path(annotation_file)
    classes = kinetics_classes(class_file if class_file is not None else path)
    collector = Collector(classes, on_error)
    finder = _ClipFinder(Path(video_root), tuple(extensions))
    clips = read_kinetics_csv(path, collector.reject)
    listed = [(f"{path}: line {c.line}", c) for c in clips.values()]
    _collect(listed, finder, collector, probe_durations)
    return collector.finish(path.name, default_prober(probe_durations), workers=probe_workers)


def minikinetics_classes(train_id_file: str | Path, train_csv: str | Path) -> list[str]:
    """Mini-Kinetics classes: the sorted labels of the videos in its train list."""
    clips = read_kinetics_csv(train_csv, _ignore)
    ids = {video_id for _, video_id in numbered_lines(Path(train_id_file))}
    return sorted({clips[i].label for i in ids if i in clips and clips[i].label})


def load_minikinetics(
    id_file: str | Path,
    annotation_file: str | Path,
    video_root: str | Path,
    train_id_file: str | Path,
    train_annotation_file: str | Path,
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS,
    probe_durations: bool = False,
    probe_workers: int = 8,
    on_error: str = "raise",
) -> RecordSet:
    """Records of the Mini-Kinetics list ``id_file`` (one youtube id a line) whose clips exist.

    Each id is looked up in the Kinetics-400 CSV ``annotation_file`` (the train CSV for the
    train list, the val CSV for the val list); the class list comes from ``train_id_file``
    over ``train_annotation_file``. An id absent from the CSV, or a malformed line, raises
    :class:`AnnotationError` naming file and line (``on_error="skip"``: warned and listed).
    """
    check_options(on_error)
    id_path = Path(id_file)
    classes = minikinetics_classes(train_id_file, train_annotation_file)
    collector = Collector(classes, on_error)
    finder = _ClipFinder(Path(video_root), tuple(extensions))
    clips = read_kinetics_csv(annotation_file, collector.reject)
    listed: list[tuple[str, KineticsClip]] = []
    seen: set[str] = set()
    for number, video_id in numbered_lines(id_path):
        where = f"{id_path}: line {number}"
        try:
            check_video_id(video_id, where)
            if video_id not in clips:
                raise AnnotationError(f"{where}: {video_id!r} is not in {annotation_file}")
            if video_id in seen:
                raise AnnotationError(f"{where}: {video_id!r} repeated")
        except AnnotationError as err:
            collector.reject(video_id, err)
            continue
        seen.add(video_id)
        listed.append((where, clips[video_id]))
    _collect(listed, finder, collector, probe_durations)
    return collector.finish(id_path.name, default_prober(probe_durations), workers=probe_workers)
