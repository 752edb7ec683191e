"""The official ActivityNet classification submission: write one, and score one as the
official evaluation (``Evaluation/eval_classification.py`` of activitynet/ActivityNet) does.

A submission is ``{"version": "VERSION 1.3", "results": {video_id: [{"label", "score"}, ...]},
"external_data": {"used", "details"}}`` with ids as in the ground truth (no ``v_`` prefix).
The official score differs from our ``mAP`` (:mod:`dkp.evaluation.metrics`) in two ways: it
sees only the labels each video submits (usually the top few), and its AP is VOC-style
*interpolated* (precision made monotone before taking the area under the PR curve). Both are
reported so results can be compared with papers of either convention.

Score one with ``dkp-activitynet score SUBMISSION GROUND_TRUTH``.
Unlike the official script, no list of blocked videos is fetched from its (defunct) server,
and a submitted label that no ground-truth video of the subset has is kept (it can only be
wrong) instead of crashing the evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dkp.data.annotations.records import AnnotationError
from dkp.evaluation.metrics import mean_average_precision
from dkp.runtime.atomic import write_json

VERSION = "VERSION 1.3"
Ranked = list[tuple[str, float]]  # (label, score) pairs of one video


def submission_id(video_id: str) -> str:
    """A video's id as the ground truth spells it: ``v_<11-char YouTube id>`` loses its prefix.

    Only a 13-character ``v_`` id is stripped, since YouTube ids (11 characters) may
    themselves start with ``v_``.
    """
    return video_id[2:] if len(video_id) == 13 and video_id.startswith("v_") else video_id


def build_submission(
    predictions: Iterable[tuple[str, Ranked]], external_data: bool = False, details: str = ""
) -> dict[str, Any]:
    """The submission object of ``(video_id, [(label, score), ...])`` pairs."""
    results = {
        submission_id(video_id): [{"label": label, "score": float(s)} for label, s in ranked]
        for video_id, ranked in predictions
    }
    return {
        "version": VERSION,
        "results": results,
        "external_data": {"used": bool(external_data), "details": details},
    }


def write_submission(path: str | Path, submission: dict[str, Any]) -> Path:
    """Write a submission object as JSON."""
    return write_json(path, submission, indent=1)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AnnotationError(f"{path}: not valid JSON ({err})") from err


def load_submission(path: str | Path) -> dict[str, Ranked]:
    """The ``results`` of a submission file: each video's (label, score) pairs."""
    path = Path(path)
    data = _json(path)
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise AnnotationError(f"{path}: no 'results' object (is this a submission file?)")
    results: dict[str, Ranked] = {}
    for video_id, entries in data["results"].items():
        try:
            results[video_id] = [(str(e["label"]), float(e["score"])) for e in entries]
        except (KeyError, TypeError, ValueError) as err:
            raise AnnotationError(
                f"{path}: video {video_id!r}: entries must be {{'label', 'score'}} ({err!r})"
            ) from None
    return results


def load_ground_truth(path: str | Path, subset: str = "validation") -> dict[str, set[str]]:
    """Each labelled ``subset`` video's set of labels, from an ActivityNet annotation file.

    Videos without annotations are left out, as the official code leaves them out."""
    path = Path(path)
    data = _json(path)
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise AnnotationError(f"{path}: no 'database' object (is this an ActivityNet file?)")
    truth: dict[str, set[str]] = {}
    for video_id, entry in data["database"].items():
        if not isinstance(entry, dict) or entry.get("subset") != subset:
            continue
        try:
            labels = {ann["label"] for ann in entry.get("annotations", [])}
        except (KeyError, TypeError):
            raise AnnotationError(f"{path}: video {video_id!r}: annotation without label") from None
        if labels:
            truth[video_id] = labels
    return truth


def interpolated_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC (2010+) AP: the area under the PR curve with precision made non-increasing."""
    mprec = np.concatenate([[0.0], precision, [0.0]])
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mprec = np.maximum.accumulate(mprec[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[steps] - mrec[steps - 1]) * mprec[steps]))


def class_ap(positives: set[str], predictions: Sequence[tuple[str, float]]) -> float:
    """Interpolated AP of one class: ``predictions`` are its (video, score) submissions.

    Ranked by score, a prediction is a true positive when its video shows the class and no
    earlier prediction already claimed that video; otherwise a false positive.
    """
    # Descending as the official script sorts (numpy argsort reversed), for identical ties.
    order = np.argsort(np.asarray([s for _, s in predictions], dtype=np.float64))[::-1]
    claimed: set[str] = set()
    hits = np.zeros(len(predictions))
    for rank, i in enumerate(order):
        video = predictions[i][0]
        if video in positives and video not in claimed:
            hits[rank] = 1.0
            claimed.add(video)
    tp = np.cumsum(hits)
    fp = np.cumsum(1.0 - hits)
    return interpolated_ap(tp / len(positives), tp / (tp + fp))


def hit_at_k(truth: dict[str, set[str]], results: dict[str, Ranked], k: int = 3) -> float:
    """Share of ground-truth videos with a true label among their ``k`` best submitted ones."""
    hits = 0
    for video, labels in truth.items():
        ranked = results.get(video, [])
        order = np.argsort(np.asarray([s for _, s in ranked], dtype=np.float64))[::-1][:k]
        hits += any(ranked[i][0] in labels for i in order)
    return hits / max(len(truth), 1)


def non_interpolated_map(truth: dict[str, set[str]], results: dict[str, Ranked]) -> float:
    """Our mAP (:func:`~dkp.evaluation.metrics.mean_average_precision`) on the submission:
    the ground-truth videos' submitted scores, 0 for labels a video did not submit."""
    classes = sorted({label for labels in truth.values() for label in labels})
    column = {name: j for j, name in enumerate(classes)}
    scores = torch.zeros(len(truth), len(classes), dtype=torch.float64)
    target = torch.zeros_like(scores)
    for i, (video, labels) in enumerate(truth.items()):
        for label in labels:
            target[i, column[label]] = 1.0
        for label, score in results.get(video, []):
            if label in column:
                scores[i, column[label]] = max(float(scores[i, column[label]]), score)
    return mean_average_precision(scores, target)


@dataclass(frozen=True)
class SubmissionScore:
    """The official numbers (interpolated mAP, hit@k) and our non-interpolated mAP."""

    interpolated_map: float
    hit_at_k: float
    k: int
    non_interpolated_map: float
    num_videos: int
    num_classes: int
    num_submitted: int


def score_submission(
    submission: str | Path, ground_truth: str | Path, subset: str = "validation", k: int = 3
) -> SubmissionScore:
    """Score a submission file against the ground truth of ``subset``, as the official code.

    Classes are those of the subset's ground truth; mAP is the mean of their interpolated
    APs. Submitted videos outside the subset count as false positives, as there.
    """
    truth = load_ground_truth(ground_truth, subset)
    if not truth:
        raise AnnotationError(f"{ground_truth}: no videos in subset {subset!r}")
    results = load_submission(submission)
    by_class: dict[str, list[tuple[str, float]]] = {}
    for video, ranked in results.items():
        for label, score in ranked:
            by_class.setdefault(label, []).append((video, score))
    positives: dict[str, set[str]] = {}
    for video, labels in truth.items():
        for label in labels:
            positives.setdefault(label, set()).add(video)
    aps = [class_ap(videos, by_class.get(label, [])) for label, videos in positives.items()]
    return SubmissionScore(
        interpolated_map=float(np.mean(aps)),
        hit_at_k=hit_at_k(truth, results, k),
        k=k,
        non_interpolated_map=non_interpolated_map(truth, results),
        num_videos=len(truth),
        num_classes=len(positives),
        num_submitted=len(results),
    )
