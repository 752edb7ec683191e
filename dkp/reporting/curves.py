"""Accuracy-vs-GFLOPs curves from every results.json under some directories.

Points are grouped into curves by their ``series`` (set in the train/eval config, or derived
from the model kind and sampling; :mod:`dkp.reporting.points`); each point is drawn with its
95 % interval over test videos, and a band where several runs (seeds) make it. Failed sweep
jobs (``failed.json``) and unreadable results are reported, never fatal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from dkp.reporting.points import CurvePoint, collect_points, series_points
from dkp.reporting.tables import AXIS_LABELS, write_points
from dkp.runtime.results import FAILED_FILE

FIXED_STYLES = {
    "Teacher": {"color": "tab:green", "marker": "D"},
    "Student": {"color": "tab:blue", "marker": "o"},
}
DKP_COLORS = ("tab:red", "tab:purple", "tab:brown", "black", "darkorange", "indigo")
OTHER_COLORS = ("tab:orange", "tab:cyan", "tab:olive", "tab:pink", "tab:gray", "teal")
OTHER_MARKERS = ("v", "P", "X", "<", ">", "h")


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


def plot_curves(
    points: Sequence[CurvePoint], out_path_stem: str | Path, title: str = ""
) -> list[Path]:
    """One curve per series (score vs GFLOPs per video) as ``<stem>.png`` and ``<stem>.svg``:
    each point with its 95 % interval over test videos (vertical bar), the spread of GFLOPs
    over videos where sampling gives videos different frame counts (horizontal bar, one
    standard deviation), and a band for the 95 % interval over independently trained seeds."""
    if not points:
        raise ValueError("no points to plot")
    curves = series_points(points)
    styles = _styles(list(curves))
    fig, ax = plt.subplots(figsize=(8.6, 4.6), constrained_layout=True)
    for name in sorted(curves):
        style, members = styles[name], curves[name]
        xs = [p.gflops for p in members]
        ys = [p.value for p in members]
        ax.plot(xs, ys, label=name, **style)
        color, z = style["color"], style["zorder"]
        bars = {"fmt": "none", "linewidth": 1, "alpha": 0.6, "ecolor": color, "zorder": z}
        lo = np.asarray([p.value_lo for p in members])
        if np.isfinite(lo).any():
            hi = np.asarray([p.value_hi for p in members])
            yerr = np.vstack([np.asarray(ys) - lo, hi - np.asarray(ys)])
            ax.errorbar(xs, ys, yerr=np.nan_to_num(yerr), capsize=2.5, **bars)
        spread = [p.gflops_std for p in members]
        if any(spread):
            ax.errorbar(xs, ys, xerr=spread, capsize=0, **{**bars, "alpha": 0.3})
        if any(p.seeds > 1 for p in members):
            band = ([p.seed_lo for p in members], [p.seed_hi for p in members])
            ax.fill_between(xs, *band, color=color, alpha=0.12, linewidth=0, zorder=z - 1)
    ax.set_xlabel("GFLOPs per video (GMACs: one multiply-add counts once)")
    ax.set_ylabel(" / ".join(dict.fromkeys(AXIS_LABELS.get(p.metric, p.metric) for p in points)))
    ax.grid(alpha=0.3)
    legend = ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside data
    notes = ["bars: 95% interval over test videos"]
    if any(p.gflops_std for p in points):
        notes.append("horizontal: GFLOPs spread\nover videos (1 s.d.)")
    if any(p.seeds > 1 for members in curves.values() for p in members):
        notes.append("band: 95% interval\nover trained seeds")
    legend.set_title("\n".join(notes), prop={"size": 7})
    legend._legend_box.align = "left"
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
