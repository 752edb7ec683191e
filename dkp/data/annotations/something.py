"""Something-Something v2 (JSON) and v1 (semicolon CSVs, JPEG frame folders) to records.

v2: ``something-something-v2-labels.json`` maps each template to its class index (a string);
the class list is in index order. ``train.json``/``validation.json`` list
``{"id", "label", "template", "placeholders"}``; as in the official code, an entry's class is
its ``template`` with the brackets removed ("Putting [something] on a surface" -> "Putting
something on a surface"). Videos are ``<root>/<id>.webm``; their durations are probed.

v1: ``something-something-v1-labels.csv`` has one class a line (index = line order);
``-train.csv``/``-validation.csv`` lines are ``<id>;<class>`` (``<id>`` alone in the test
file). Videos are folders of JPEG frames ``<root>/<id>/00001.jpg ...``, read with
:class:`~dkp.data.video.FrameFolderReader`; a video's duration is its frame count / ``fps``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    check_video_id,
)
from dkp.data.decoding import FrameFolderReader

V2_EXTENSIONS = (".webm", *(e for e in VIDEO_EXTENSIONS if e != ".webm"))


def _json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AnnotationError(f"{path}: not valid JSON ({err})") from err


def something_v2_classes(labels_file: str | Path) -> list[str]:
    """The v2 class names (templates without brackets) in index order, indices 0..N-1."""
    path = Path(labels_file)
    labels = _json(path)
    if not isinstance(labels, dict) or not labels:
        raise AnnotationError(f"{path}: expected an object {{template: index}}")
    by_index: dict[int, str] = {}
    for name, value in labels.items():
        try:
            index = int(value)
        except (TypeError, ValueError):
            raise AnnotationError(f"{path}: {name!r}: index {value!r} is not a number") from None
        if index in by_index:
            raise AnnotationError(f"{path}: {name!r} and {by_index[index]!r} share index {index}")
        by_index[index] = name
    if sorted(by_index) != list(range(len(by_index))):
        raise AnnotationError(f"{path}: class indices do not run 0..{len(by_index) - 1}")
    return [by_index[i] for i in range(len(by_index))]


def _v2_entry(entry: Any, where: str, index: dict[str, int], labelled: bool) -> tuple[str, tuple]:
    """(video id, labels) of one v2 annotation entry."""
    if not isinstance(entry, dict) or "id" not in entry:
        raise AnnotationError(f"{where}: not an object with an 'id'")
    video_id = str(entry["id"])
    check_video_id(video_id, where)
    template = entry.get("template")
    if template is None:
        if labelled:
            raise AnnotationError(f"{where}: no 'template'")
        return video_id, ()
    if not isinstance(template, str):
        raise AnnotationError(f"{where}: template {template!r} is not a string")
    name = template.replace("[", "").replace("]", "")
    if name not in index:
        raise AnnotationError(f"{where}: template {template!r} ({name!r}) is not a known class")
    return video_id, (index[name],)


def load_something_v2(
    annotation_file: str | Path,
    labels_file: str | Path,
    video_root: str | Path,
    subset: str = "training",
    extensions: tuple[str, ...] = V2_EXTENSIONS,
    probe_durations: bool = True,
    nominal_duration: float | None = None,
    probe_workers: int = 8,
    on_error: str = "raise",
) -> RecordSet:
    """Records of a v2 annotation file whose videos exist; ``subset`` names the records'.

    Entries must carry a template unless ``subset`` is testing. A malformed entry or an
    unknown template raises :class:`AnnotationError` naming file and entry, or with
    ``on_error="skip"`` is logged and listed in ``RecordSet.skipped``.
    """
    check_options(on_error, subset)
    path, root = Path(annotation_file), Path(video_root)
    if not root.is_dir():
        raise FileNotFoundError(f"video root {root} does not exist")
    classes = something_v2_classes(labels_file)
    index = {name: i for i, name in enumerate(classes)}
    entries = _json(path)
    if not isinstance(entries, list):
        raise AnnotationError(f"{path}: expected a list of entries")
    collector = Collector(classes, on_error)
    for number, entry in enumerate(entries):
        video = entry.get("id") if isinstance(entry, dict) else None
        where = f"{path}: entry {number} (id {video!r})"
        try:
            video_id, labels = _v2_entry(entry, where, index, subset != "testing")
        except AnnotationError as err:
            collector.reject(where, err)
            continue
        found = find_video_in([root], [video_id], tuple(extensions))
        record = None if found is None else VideoRecord(video_id, found, UNKNOWN, labels, subset)
        collector.add(record, video_id)
    return collector.finish(
        path.name, default_prober(probe_durations), nominal_duration, probe_workers
    )


def something_v1_classes(labels_file: str | Path) -> list[str]:
    """The v1 class names, one a line, in file order."""
    path = Path(labels_file)
    classes = [line for _, line in numbered_lines(path)]
    if not classes:
        raise AnnotationError(f"{path}: no classes")
    if len(set(classes)) != len(classes):
        raise AnnotationError(f"{path}: a class is listed twice")
    return classes


def load_something_v1(
    annotation_file: str | Path,
    labels_file: str | Path,
    frame_root: str | Path,
    subset: str = "training",
    fps: float = 12.0,
    pattern: str = "*.jpg",
    probe_workers: int = 8,
    on_error: str = "raise",
) -> RecordSet:
    """Records of a v1 CSV whose frame folders exist; duration = frames / ``fps``.

    A malformed line or unknown class raises :class:`AnnotationError` naming file and
    line, or with ``on_error="skip"`` is logged and listed; a folder without frames is
    skipped as undecodable.
    """
    check_options(on_error, subset)
    path, root = Path(annotation_file), Path(frame_root)
    if not root.is_dir():
        raise FileNotFoundError(f"frame root {root} does not exist")
    classes = something_v1_classes(labels_file)
    index = {name: i for i, name in enumerate(classes)}
    collector = Collector(classes, on_error)
    for number, line in numbered_lines(path):
        where = f"{path}: line {number}"
        video_id, sep, name = (part.strip() for part in line.partition(";"))
        try:
            check_video_id(video_id, where)
            if sep and name not in index:
                raise AnnotationError(f"{where}: class {name!r} is not in {Path(labels_file).name}")
            if not sep and subset != "testing":
                raise AnnotationError(f"{where}: expected '<id>;<class>', got {line!r}")
        except AnnotationError as err:
            collector.reject(where, err)
            continue
        folder = root / video_id
        labels = (index[name],) if sep else ()
        record = VideoRecord(video_id, folder, UNKNOWN, labels, subset, fps=fps)
        collector.add(record if folder.is_dir() else None, video_id)
    return collector.finish(path.name, FrameFolderReader(fps, pattern=pattern), None, probe_workers)
