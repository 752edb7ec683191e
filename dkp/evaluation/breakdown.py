"""A score broken down: mAP per group of classes, top-1 on the shorter and the longer videos.

One number per curve point hides trades: a sampling strategy that gives long videos more
frames and short ones fewer can win on one kind of class and lose on another at the same
mean score. Each value comes with bootstrap replicates (the rows of ``weights``, as in
:mod:`dkp.evaluation.bootstrap`), so it carries the same 95 % interval as the curve points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dkp.evaluation.bootstrap import map_replicates, top1_replicates


@dataclass(frozen=True)
class GroupScores:
    """One class group's scores under each replicate ``(B,)``; NaN where it has no video."""

    group: str
    videos: int  # test videos with a label of the group
    map: np.ndarray  # mAP over the group's classes, every video ranked
    top1_shorter: np.ndarray  # top-1 of the group's videos shorter than the edge
    top1_longer: np.ndarray  # ... and of those at least that long


def group_scores(
    probs: np.ndarray,
    target: np.ndarray,
    durations: np.ndarray,
    groups: Mapping[str, Sequence[int]],
    weights: np.ndarray,
    edge: float,
) -> list[GroupScores]:
    """Scores ``(V, C)`` against multi-hot ``target`` ``(V, C)``, per group of class columns:
    its mAP, and the top-1 of its videos shorter than ``edge`` seconds and of the others."""
    weights = np.atleast_2d(np.asarray(weights, np.float64))
    shorter = np.asarray(durations, np.float64) < edge
    out = []
    for name, columns in groups.items():
        columns = list(columns)
        if not columns:
            raise ValueError(f"group {name!r} has no class")
        member = target[:, columns].sum(axis=1) > 0
        out.append(
            GroupScores(
                group=name,
                videos=int(member.sum()),
                map=map_replicates(probs[:, columns], target[:, columns], weights),
                top1_shorter=_top1(probs, target, member & shorter, weights),
                top1_longer=_top1(probs, target, member & ~shorter, weights),
            )
        )
    return out


def _top1(
    probs: np.ndarray, target: np.ndarray, rows: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Top-1 of the videos ``rows`` under each replicate; NaN where a replicate draws none."""
    if not rows.any():
        return np.full(len(weights), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return top1_replicates(probs[rows], target[rows], weights[:, rows])
