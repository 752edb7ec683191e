"""How much a set-level metric would move with another draw of test videos: the bootstrap.

A replicate draws ``V`` of the ``V`` test videos with replacement; it is a weight per video
(how many times it was drawn), so one matrix of weights ``(B, V)`` scores every curve point
on the *same* replicates. The 95 % interval of a point is the 2.5th to 97.5th percentile of
its replicates; the difference of two points (or of two curves interpolated at equal cost)
on the same replicates is a *paired* comparison, which cancels the videos' shared difficulty.

A replicate's AP is :func:`dkp.evaluation.metrics.average_precision` under its weights (the
same AP the metrics report, which is the replicate of weight one for every video).
"""

from __future__ import annotations

import warnings

import numpy as np

from dkp.evaluation.average_precision import average_precision

LEVEL = 0.95


def replicate_weights(videos: int, replicates: int = 1000, seed: int = 0) -> np.ndarray:
    """``(B, V)`` bootstrap weights: how often each of ``videos`` is drawn in each replicate."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(videos, np.full(videos, 1.0 / videos), size=replicates).astype(
        np.float64
    )


def weights_with_full_set(videos: int, replicates: int = 1000, seed: int = 0) -> np.ndarray:
    """``(1 + B, V)``: every video once (the full set's value), then :func:`replicate_weights`:
    the rows a table cell of a value and its interval reads
    (:func:`dkp.reporting.tables.interval_cell`)."""
    return np.vstack([np.ones(videos), replicate_weights(videos, replicates, seed)])


def map_replicates(probs: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """mAP ``(B,)`` of scores ``(V, C)`` against multi-hot ``target`` under each replicate:
    the mean over the classes that have a positive video in it."""
    per_class = np.stack(
        [average_precision(probs[:, c], target[:, c] > 0, weights) for c in
         range(probs.shape[1])], axis=1
    )  # fmt: skip
    with warnings.catch_warnings():  # a replicate may hold no positive of any class: NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(per_class, axis=1)


def top1_replicates(probs: np.ndarray, target: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Top-1 accuracy ``(B,)`` (a video is right when its best class is one of its labels)."""
    hit = target[np.arange(len(probs)), np.argmax(probs, axis=1)] > 0
    labelled = target.sum(axis=1) > 0
    w = np.atleast_2d(weights) * labelled
    return (w * hit).sum(axis=1) / w.sum(axis=1)


REPLICATES = {"mAP": map_replicates, "top1": top1_replicates}


def interval(replicates: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap replicates."""
    tail = 100 * (1 - level) / 2
    lo, hi = np.nanpercentile(np.asarray(replicates, np.float64), [tail, 100 - tail])
    return float(lo), float(hi)


def interpolate(x: float, xs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each replicate's curve ``values`` ``(N, B)`` at GFLOPs ``xs`` ``(N,)``, linearly at
    ``x`` (inside ``[xs.min(), xs.max()]``): ``(B,)``."""
    order = np.argsort(xs)
    xs, values = np.asarray(xs, np.float64)[order], np.asarray(values, np.float64)[order]
    if not xs[0] <= x <= xs[-1]:
        raise ValueError(f"{x:g} GFLOPs is outside the curve's [{xs[0]:g}, {xs[-1]:g}]")
    if len(xs) == 1:
        return values[0]
    k = int(np.clip(np.searchsorted(xs, x, side="right") - 1, 0, len(xs) - 2))
    t = (x - xs[k]) / (xs[k + 1] - xs[k]) if xs[k + 1] > xs[k] else 0.0
    return (1 - t) * values[k] + t * values[k + 1]
