"""Curve points: every results.json under some directories, with a 95 % interval each.

A point is one evaluated run (its mean GFLOPs per video and score). Where the run left its
per-video scores (``scores.npz`` beside ``results.json``), the point also carries bootstrap
replicates of its score (:mod:`dkp.evaluation.bootstrap`): every run scored on the same videos
is resampled with the same weights, so two points can be compared paired. Repeated runs of a
series at one place on its curve (independently trained seeds) are one :class:`SeriesPoint`:
a sweep's runs at one GFLOPs value, an exit curve's at one budget fraction.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dkp.evaluation.bootstrap import REPLICATES, interval, replicate_weights
from dkp.evaluation.video_scores import SCORES_FILE, VideoScores, read_scores
from dkp.runtime.results import (
    FAILED_FILE,
    RESULTS_FILE,
    Results,
    ResultsError,
    read_failure,
    read_results,
)

METRICS = ("mAP", "top1", "top5")
#: t quantiles (0.975) for the 95 % interval of a mean over n seeds (n - 1 degrees of freedom).
T_975 = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776, 6: 2.571, 7: 2.447, 8: 2.365, 9: 2.306}


@dataclass(frozen=True)
class CurvePoint:
    """One evaluated run: its cost (mean GFLOPs per video and spread) and score (percent)."""

    series: str
    gflops: float
    gflops_std: float
    value: float
    metric: str
    frames_student: float
    frames_teacher: float
    source: str
    num_videos: int = 0  # the videos it was scored on
    value_lo: float = math.nan  # 95 % bootstrap interval over the test videos (percent)
    value_hi: float = math.nan
    replicates: np.ndarray | None = field(default=None, repr=False, compare=False)
    # An exit curve's budget as a share of its full model's cost: its place on the curve,
    # the same for every seed's model, whatever GFLOPs each reached.
    budget_fraction: float | None = None


def series_label(results: Results) -> str:
    """The run's ``series``, or a label from its kind and sampling (e.g. "DKP adaptive-4")."""
    series = results.series
    if isinstance(series, str) and series.strip():
        return series.strip()
    sampling = results.sampling if isinstance(results.sampling, dict) else {}
    strategy = sampling.get("strategy") or "adaptive"
    networks = results.networks or sampling.get("networks") or []
    if results.kind == "dkp":
        ratio = sampling.get("ratio")
        return f"DKP {strategy}" + (f"-{ratio:g}" if isinstance(ratio, (int, float)) else "")
    if len(networks) == 1:
        name = str(networks[0]).capitalize()
        return name if strategy == "adaptive" else f"{name} ({strategy})"
    return str(results.kind or "unknown")


def _point(path: Path, results: Results, metric: str, split: str) -> CurvePoint:
    value = results.score(metric, split)
    if not math.isfinite(results.cost.gflops):
        raise ResultsError("cost.gflops is not finite")
    return CurvePoint(
        series=series_label(results),
        gflops=results.cost.gflops,
        gflops_std=_finite(results.cost.gflops_std, 0.0),
        value=100.0 * value,
        metric=metric,
        frames_student=_finite(results.cost.frames_student, math.nan),
        frames_teacher=_finite(results.cost.frames_teacher, math.nan),
        source=str(path),
        num_videos=results.num_videos,
        budget_fraction=results.exits.budget_fraction if results.exits else None,
    )


def _finite(value: Any, default: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else default


def _failure(path: Path) -> str:
    try:
        failure = read_failure(path)
    except (OSError, ValueError) as err:
        return f"job failed (unreadable {FAILED_FILE}: {err})"
    return f"job failed: {failure.first_line}"


def _auto_metric(loaded: Sequence[Results], split: str) -> str:
    """mAP if every run scored on ``split`` has it, else top1 (one metric for one y axis)."""
    keys = [f"{split}/{name}" for name in METRICS]
    scored = [r.metrics for r in loaded if any(k in r.metrics for k in keys)]
    return "mAP" if all(f"{split}/mAP" in m for m in scored) else "top1"


def collect_points(
    dirs: Sequence[str | Path],
    metric: str = "auto",
    split: str = "test",
    replicates: int = 1000,
    seed: int = 0,
) -> tuple[list[CurvePoint], list[tuple[str, str]]]:
    """Points from every results.json under ``dirs``, and the problems met as (path, reason):
    failed jobs and unusable results. ``metric="auto"``: mAP if all runs have it, else top1.
    Points whose scores are beside them get ``replicates`` bootstrap replicates (0: none)."""
    if metric != "auto" and metric not in METRICS:
        raise ValueError(f"metric: {metric!r} is not 'auto' or one of {METRICS}")
    problems: list[tuple[str, str]] = []
    loaded: list[tuple[Path, Results]] = []
    for root in map(Path, dirs):
        if not root.is_dir():
            problems.append((str(root), "not a directory"))
            continue
        for path in sorted(root.rglob(FAILED_FILE)):
            problems.append((str(path), _failure(path)))
        for path in sorted(root.rglob(RESULTS_FILE)):
            try:
                loaded.append((path, read_results(path)))
            except ResultsError as err:
                problems.append((str(path), str(err)))
            except (OSError, ValueError) as err:  # JSONDecodeError and bad UTF-8 are ValueErrors
                problems.append((str(path), f"unreadable: {err}"))
    if metric == "auto":
        metric = _auto_metric([r for _, r in loaded], split)
    points = []
    for path, results in loaded:
        try:
            points.append(_point(path, results, metric, split))
        except ResultsError as err:
            problems.append((str(path), str(err)))
    if replicates and metric in REPLICATES:
        points = _with_intervals(points, metric, replicates, seed, problems)
    return points, problems


def _with_intervals(
    points: list[CurvePoint],
    metric: str,
    replicates: int,
    seed: int,
    problems: list[tuple[str, str]],
) -> list[CurvePoint]:
    """``points`` with bootstrap replicates and intervals, where their scores are beside
    them. Runs on the same videos share one weight matrix (a paired resampling)."""
    weights: dict[tuple[str, ...], np.ndarray] = {}
    out = []
    for p in points:
        path = Path(p.source).with_name(SCORES_FILE)
        if not path.is_file():
            out.append(p)
            continue
        try:
            scores = read_scores(path)
        except (OSError, ValueError, KeyError) as err:
            problems.append((str(path), f"unreadable: {err}"))
            out.append(p)
            continue
        ids = tuple(sorted(scores.video_ids.tolist()))
        if ids not in weights:
            weights[ids] = replicate_weights(len(ids), replicates, seed)
        aligned: VideoScores = scores.aligned(ids)
        reps = 100.0 * REPLICATES[metric](aligned.probs, aligned.target, weights[ids])
        lo, hi = interval(reps)
        out.append(replace(p, value_lo=lo, value_hi=hi, replicates=reps))
    return out


@dataclass
class SeriesPoint:
    """A series at one place on its curve: the mean over its runs (seeds) of cost and score,
    the 95 % bootstrap interval of that mean over test videos and, with several runs, the
    95 % interval of the mean over runs (t-interval)."""

    series: str
    gflops: float
    gflops_std: float
    value: float
    value_lo: float
    value_hi: float
    seeds: int
    seed_lo: float = math.nan
    seed_hi: float = math.nan
    replicates: np.ndarray | None = field(default=None, repr=False)


def _place(p: CurvePoint) -> tuple[str, float]:
    """Where runs of one series meet: an exit curve's budget fraction, else the GFLOPs (a
    sweep's cost does not depend on the model)."""
    if p.budget_fraction is not None:
        return "budget", p.budget_fraction
    return "gflops", p.gflops


def series_points(points: Sequence[CurvePoint]) -> dict[str, list[SeriesPoint]]:
    """Each series' points by ascending GFLOPs, repeated runs at one place merged. Seeds'
    exit curves reach a budget at different costs: their mean is the point, so a verdict
    never picks one seed's lucky point against the others' mean."""
    groups: dict[tuple[str, tuple[str, float]], list[CurvePoint]] = defaultdict(list)
    for p in points:
        groups[p.series, _place(p)].append(p)
    out: dict[str, list[SeriesPoint]] = defaultdict(list)
    for (series, (kind, place)), runs in groups.items():
        values = np.asarray([p.value for p in runs])
        reps = [p.replicates for p in runs]
        mean_reps = np.mean(reps, axis=0) if all(r is not None for r in reps) else None
        lo, hi = interval(mean_reps) if mean_reps is not None else (math.nan, math.nan)
        point = SeriesPoint(
            series,
            place if kind == "gflops" else float(np.mean([p.gflops for p in runs])),
            float(np.mean([p.gflops_std for p in runs])),
            float(values.mean()),
            lo,
            hi,
            len(runs),
            replicates=mean_reps,
        )
        if len(runs) >= 2:
            t = T_975.get(len(runs), 1.96)
            half = t * float(values.std(ddof=1)) / math.sqrt(len(runs))
            point.seed_lo, point.seed_hi = point.value - half, point.value + half
        out[series].append(point)
    return {name: sorted(members, key=lambda p: p.gflops) for name, members in sorted(out.items())}
