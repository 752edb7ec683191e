"""The exact average-precision kernel, in numpy alone so reports and bootstraps need no torch.

:mod:`dkp.evaluation.metrics` wraps it for tensors and torchmetrics; the bootstrap in
:mod:`dkp.evaluation.bootstrap` calls it with replicate weights.
"""

from __future__ import annotations

import numpy as np


def average_precision(scores: np.ndarray, positive: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AP of one class under each row of video weights ``(B, V)`` (a bootstrap replicate, or
    ones): ``(B,)`` in float64, NaN where a row weighs no positive video.

    Exact and a ranking measure, as scikit-learn's ``average_precision_score`` with sample
    weights: the videos are ranked by ``scores`` ``(V,)`` in float64 (so logits, large ones
    included, keep their order and no monotone transform of the scores changes the result);
    tied scores form one threshold, and AP = sum over thresholds n of (R_n - R_{n-1}) P_n.

    Only thresholds whose tie holds a positive add to the sum, so the work on ``(B, V)`` is one
    gather and one segment sum up to the last positive (``make bench`` times it at
    ActivityNet's scale). Sums run in rank order: a row gives the same bits alone or in a batch.
    """
    scores = np.asarray(scores, np.float64)
    positive = np.asarray(positive, bool)
    w = np.atleast_2d(np.asarray(weights, np.float64))
    order = np.argsort(-scores, kind="stable")
    ranked, ranked_positive = scores[order], positive[order]
    opens_tie = np.r_[True, ranked[1:] != ranked[:-1]]
    tie_starts, tie_of = np.flatnonzero(opens_tie), np.cumsum(opens_tie) - 1
    hit_ties = np.unique(tie_of[ranked_positive])
    if len(hit_ties) == 0:
        return np.full(len(w), np.nan)
    ends = np.r_[tie_starts[1:], len(ranked)][hit_ties]  # one past each positive tie
    starts = np.r_[0, ends[:-1]]  # the videos from one positive tie's end to the next's
    seen = _weight_up_to(w, order[: ends[-1]], starts)
    hits = np.flatnonzero(ranked_positive)
    true_positives = _weight_up_to(w, order[hits], np.searchsorted(hits, starts))
    total = true_positives[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(seen > 0, true_positives / seen, 0.0)
        steps = np.diff(true_positives, axis=1, prepend=0.0)
        ap = np.cumsum(steps / total * precision, axis=1)[:, -1]
    return np.where(total[:, 0] > 0, ap, np.nan)


def _weight_up_to(w: np.ndarray, columns: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each row's weight of ``columns`` (in their order) up to the end of each segment that
    begins at ``starts``: ``(B, len(starts))``, exact for whole-number weights."""
    return np.cumsum(np.add.reduceat(np.take(w, columns, axis=1), starts, axis=1), axis=1)
