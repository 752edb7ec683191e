"""Accuracy-vs-GFLOPs curves from every results.json under some directories.

Points are grouped into curves by their ``series`` (set in the train/eval config, or derived
from the model kind and sampling); failed sweep jobs (``failed.json``) and unreadable results
are reported, never fatal.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from dkp.reporting.tables import AXIS_LABELS, write_points
from dkp.runtime.results import (
    FAILED_FILE,
    RESULTS_FILE,
    Results,
    ResultsError,
    read_failure,
    read_results,
)

METRICS = ("mAP", "top1", "top5")
FIXED_STYLES = {
    "Teacher": {"color": "tab:green", "marker": "D"},
    "Student": {"color": "tab:blue", "marker": "o"},
}
DKP_COLORS = ("tab:red", "tab:purple", "tab:brown", "black", "darkorange", "indigo")
OTHER_COLORS = ("tab:orange", "tab:cyan", "tab:olive", "tab:pink", "tab:gray", "teal")
OTHER_MARKERS = ("v", "P", "X", "<", ">", "h")


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
    dirs: Sequence[str | Path], metric: str = "auto", split: str = "test"
) -> tuple[list[CurvePoint], list[tuple[str, str]]]:
    """Points from every results.json under ``dirs``, and the problems met as (path, reason):
    failed jobs and unusable results. ``metric="auto"``: mAP if all runs have it, else top1."""
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
    return points, problems


def _styles(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Stable looks: fixed for Teacher/Student, bold lines for DKP series (dashed under
    fixed-interval sampling, so the two strategies read apart), thin others."""
    dkp = sorted(n for n in names if n.startswith("DKP"))
    other = sorted(n for n in names if n not in FIXED_STYLES and n not in dkp)
    styles: dict[str, dict[str, Any]] = {}
    for name in names:
        if name in FIXED_STYLES:
            look = {**FIXED_STYLES[name], "linewidth": 1.5, "markersize": 6, "zorder": 2}
        elif name in dkp:
            color = DKP_COLORS[dkp.index(name) % len(DKP_COLORS)]
            look = {"color": color, "marker": "s", "linewidth": 2.4, "markersize": 7, "zorder": 3}
            look["linestyle"] = "--" if "fixed" in name.lower() else "-"
        else:
            i = other.index(name)
            look = {"color": OTHER_COLORS[i % len(OTHER_COLORS)], "linewidth": 1.2}
            look |= {"marker": OTHER_MARKERS[i % len(OTHER_MARKERS)], "markersize": 5, "zorder": 2}
        styles[name] = look
    return styles


def _mean_per_x(points: Sequence[CurvePoint]) -> tuple[list[float], list[float], list[float]]:
    """x, mean value and mean GFLOPs spread per distinct GFLOPs (repeated runs share an x)."""
    groups: dict[float, list[CurvePoint]] = defaultdict(list)
    for p in points:
        groups[p.gflops].append(p)
    xs = sorted(groups)
    ys = [sum(p.value for p in groups[x]) / len(groups[x]) for x in xs]
    spread = [sum(p.gflops_std for p in groups[x]) / len(groups[x]) for x in xs]
    return xs, ys, spread


def plot_curves(
    points: Sequence[CurvePoint], out_path_stem: str | Path, title: str = ""
) -> list[Path]:
    """One curve per series (score vs GFLOPs per video) as ``<stem>.png`` and ``<stem>.svg``."""
    if not points:
        raise ValueError("no points to plot")
    by_series: dict[str, list[CurvePoint]] = defaultdict(list)
    for p in points:
        by_series[p.series].append(p)
    styles = _styles(list(by_series))
    fig, ax = plt.subplots(figsize=(8.2, 4.4), constrained_layout=True)
    for name in sorted(by_series):
        style, members = styles[name], by_series[name]
        xs, ys, spread = _mean_per_x(members)
        ax.plot(xs, ys, label=name, **style)
        if any(spread):
            bars = {"fmt": "none", "capsize": 2, "linewidth": 1, "alpha": 0.5}
            ax.errorbar(xs, ys, xerr=spread, ecolor=style["color"], zorder=style["zorder"], **bars)
        if len(members) > len(xs):  # repeated runs: show each one faintly around the mean
            xy = ([p.gflops for p in members], [p.value for p in members])
            ax.scatter(*xy, s=12, color=style["color"], alpha=0.35, zorder=style["zorder"])
    ax.set_xlabel("GFLOPs per video (GMACs: one multiply-add counts once)")
    ax.set_ylabel(" / ".join(dict.fromkeys(AXIS_LABELS.get(p.metric, p.metric) for p in points)))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the data
    if title:
        ax.set_title(title, fontsize=10)
    stem = Path(out_path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".svg")]
    # Text as text and a fixed id salt/no date, so a re-run gives the same committed SVG.
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": "dkp-curves"}):
        fig.savefig(paths[0], dpi=110)
        fig.savefig(paths[1], metadata={"Date": None})
    plt.close(fig)
    return paths


@dataclass
class CurveReport:
    """What :func:`draw_curves` found and wrote."""

    points: list[CurvePoint]
    failed: list[tuple[str, str]]  # (failed.json, why)
    skipped: list[tuple[str, str]]  # (results.json, why it gives no point)
    files: list[Path] = field(default_factory=list)


def split_problems(
    problems: Sequence[tuple[str, str]],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Failed jobs (a failed.json) apart from the other problems."""
    failed = [(path, why) for path, why in problems if Path(path).name == FAILED_FILE]
    return failed, [item for item in problems if item not in failed]


def draw_curves(
    dirs: Sequence[str | Path],
    out_dir: str | Path,
    metric: str = "auto",
    split: str = "test",
    title: str = "",
    name: str = "curves",
) -> CurveReport:
    """Collect every point under ``dirs``; draw ``<name>.{png,svg}`` and write
    ``<name>.{csv,md}`` in ``out_dir`` (nothing when there is no point). A ``title`` (the
    dataset) is followed by the split and the number of videos the points were scored on."""
    points, problems = collect_points(dirs, metric=metric, split=split)
    failed, skipped = split_problems(problems)
    report = CurveReport(points, failed, skipped)
    counts = {p.num_videos for p in points}
    if title and len(counts) == 1 and min(counts) > 0:
        title = f"{title}: {split} split, {counts.pop()} videos"
    if points:
        report.files += plot_curves(points, Path(out_dir) / name, title=title)
        report.files += write_points(points, out_dir, failed, skipped, name=name)
    return report
