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
    """
    scores = np.asarray(scores, np.float64)
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    w = np.atleast_2d(np.asarray(weights, np.float64))[:, order]
    hits = w * np.asarray(positive, bool)[order]
    ends = np.r_[np.flatnonzero(np.diff(ranked) != 0), len(ranked) - 1]  # last of each tie
    true_positives = np.cumsum(hits, axis=1)[:, ends]
    seen = np.cumsum(w, axis=1)[:, ends]
    total = true_positives[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(seen > 0, true_positives / seen, 0.0)
        steps = np.diff(np.concatenate([np.zeros_like(total), true_positives], axis=1), axis=1)
        ap = np.sum(steps / total * precision, axis=1)
    return np.where(total[:, 0] > 0, ap, np.nan)
