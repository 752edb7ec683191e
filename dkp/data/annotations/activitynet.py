"""ActivityNet v1.3 annotations (``activity_net.v1-3.min.json``) to :class:`VideoRecord`s.

Classes are the taxonomy's leaves (nodes that are no other node's parent), sorted by name:
a stable order that does not depend on the file's node order. Missing video files are
skipped and counted (real copies miss 5-10% of the videos); malformed entries raise
:class:`AnnotationError` naming the file and the video, except entries that only lack a
usable duration, which are skipped with a warning when ``strict=False``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dkp.data.annotations.records import (
    SUBSETS,
    VIDEO_EXTENSIONS,
    AnnotationError,
    RecordSet,
    VideoRecord,
    check_duration,
    check_video_id,
    find_video,
)

log = logging.getLogger(__name__)


def taxonomy_classes(taxonomy: list[dict[str, Any]], source: str = "taxonomy") -> list[str]:
    """The leaf node names of an ActivityNet taxonomy, sorted by name."""
    try:
        parents = {node["parentId"] for node in taxonomy}
        leaves = {node["nodeName"] for node in taxonomy if node["nodeId"] not in parents}
    except (KeyError, TypeError) as err:
        raise AnnotationError(f"{source}: taxonomy node without nodeId/nodeName/parentId") from err
    return sorted(leaves)


def taxonomy_groups(taxonomy: list[dict[str, Any]], source: str = "taxonomy") -> dict[str, str]:
    """Each leaf class's top-level group: its ancestor just below the root (ActivityNet's seven
    categories such as "Sports, Exercise, and Recreation"); a leaf right under the root is its
    own group. What a score broken down by kind of class is grouped by."""
    try:
        nodes = {node["nodeId"]: (node["nodeName"], node["parentId"]) for node in taxonomy}
    except (KeyError, TypeError) as err:
        raise AnnotationError(f"{source}: taxonomy node without nodeId/nodeName/parentId") from err
    parents = {parent for _, parent in nodes.values()}
    groups = {}
    for node_id, (name, parent) in nodes.items():
        if node_id in parents:
            continue
        seen = {node_id}
        while parent in nodes and nodes[parent][1] in nodes:  # the parent is not the root
            if parent in seen:
                raise AnnotationError(f"{source} has a cycle through {name!r}")
            seen.add(parent)
            node_id, parent = parent, nodes[parent][1]
        groups[name] = nodes[node_id][0]
    return dict(sorted(groups.items()))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook that refuses duplicate keys (``json`` would keep the last silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise AnnotationError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _load_json(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as f:
            data = json.load(f, object_pairs_hook=_unique_keys)
    except AnnotationError as err:
        raise AnnotationError(f"{path}: {err} (a video id may appear only once)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AnnotationError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise AnnotationError(f"{path}: no 'database' object (is this an ActivityNet file?)")
    return data


def _labels(
    entry: dict[str, Any], index: dict[str, int], where: str
) -> tuple[tuple[int, ...], tuple]:
    annotations = entry.get("annotations", [])
    if not isinstance(annotations, list):
        raise AnnotationError(f"{where}: 'annotations' is not a list")
    labels: list[int] = []
    segments: list[tuple[float, float]] = []
    for ann in annotations:
        try:
            name, (start, end) = ann["label"], ann["segment"]
        except (KeyError, TypeError, ValueError) as err:
            raise AnnotationError(
                f"{where}: annotation {ann!r} lacks 'label' or 'segment'"
            ) from err
        if name not in index:
            raise AnnotationError(f"{where}: unknown label {name!r} (not a taxonomy leaf)")
        if index[name] not in labels:
            labels.append(index[name])
        segments.append((float(start), float(end)))
    return tuple(sorted(labels)), tuple(segments)


def ground_truth(annotation_file: str | Path) -> dict[str, tuple[list[str], list[tuple]]]:
    """Each annotated video's labels and action segments (seconds), by video id (with and
    without ``v_``): what a figure shows as the ground truth of a video file."""
    data = _load_json(Path(annotation_file))
    truth = {}
    for video_id, entry in data["database"].items():
        annotations = entry.get("annotations", []) if isinstance(entry, dict) else []
        labels = list(dict.fromkeys(a["label"] for a in annotations if "label" in a))
        segments = [tuple(a["segment"]) for a in annotations if "segment" in a]
        truth[video_id] = truth[f"v_{video_id}"] = (labels, segments)
    return truth


def load_activitynet(
    annotation_file: str | Path,
    video_root: str | Path,
    subsets: Iterable[str] = ("training",),
    extensions: tuple[str, ...] = VIDEO_EXTENSIONS,
    classes: list[str] | None = None,
    on_error: str = "raise",
) -> RecordSet:
    """Read the records of ``subsets`` whose video exists as ``v_<id>.<ext>`` or ``<id>.<ext>``.

    ``classes`` overrides the taxonomy's leaves (for a file with a custom taxonomy). A bad
    entry (unknown label, a duration that is not in (0, a day], NaN included, an id that is
    not a plain file name) raises
    :class:`AnnotationError` naming it, or with ``on_error="skip"`` is logged as a warning
    and listed in ``RecordSet.skipped``.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error: {on_error!r} is not 'raise' or 'skip'")
    path = Path(annotation_file)
    root = Path(video_root)
    subsets = tuple(subsets)
    for subset in subsets:
        if subset not in SUBSETS:
            raise ValueError(f"subsets: {subset!r} is not one of {SUBSETS}")
    data = _load_json(path)
    if classes is None:
        classes = taxonomy_classes(data.get("taxonomy", []), f"{path}: taxonomy")
    if not classes:
        raise AnnotationError(f"{path}: taxonomy has no leaf classes")
    index = {name: i for i, name in enumerate(classes)}
    if not root.is_dir():
        raise FileNotFoundError(f"video root {root} does not exist (annotations: {path})")

    result = RecordSet(classes=list(classes), records=[])
    for video_id, entry in data["database"].items():
        where = f"{path}: video {video_id!r}"
        if not isinstance(entry, dict):
            raise AnnotationError(f"{where}: entry is not an object")
        if entry.get("subset") not in subsets:
            continue
        try:
            check_video_id(video_id, str(path))
            duration = check_duration(entry.get("duration"), where)
            labels, segments = _labels(entry, index, where)
        except AnnotationError as err:
            if on_error == "raise":
                raise
            log.warning("skipping: %s", err)
            result.skipped.append((video_id, str(err)))
            continue
        stems = [f"v_{video_id}", video_id]  # real YouTube ids may themselves start with "v_"
        video = find_video(root, stems, extensions)
        if video is None:
            result.missing.append(video_id)
            continue
        result.records.append(
            VideoRecord(
                video_id=video_id,
                path=video,
                duration=float(duration),
                labels=labels,
                subset=entry["subset"],
                segments=segments,
            )
        )
    log.info("%s [%s]: %s", path.name, ",".join(subsets), result.summary())
    return result
