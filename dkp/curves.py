"""dkp-curves: accuracy-vs-GFLOPs curves and tables from every results.json under some dirs.

Points are grouped into curves by their ``series`` (set in the train/eval config, or derived
from the model kind and sampling); failed sweep jobs (``failed.json``) and unreadable results
are reported, never fatal.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from dkp.evaluation.results import RESULTS_FILE, read_results

FAILED_FILE = "failed.json"  # as written by dkp.jobs (not imported: it needs hydra)
METRICS = ("mAP", "top1", "top5")
AXIS_LABELS = {"mAP": "mAP (%)", "top1": "Top-1 accuracy (%)", "top5": "Top-5 accuracy (%)"}
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


class _Skip(ValueError):
    """A results.json that cannot give a point; the message says why."""


def series_label(results: dict[str, Any]) -> str:
    """The run's ``series``, or a label from its kind and sampling (e.g. "DKP adaptive-4")."""
    series = results.get("series")
    if isinstance(series, str) and series.strip():
        return series.strip()
    sampling = results.get("sampling") if isinstance(results.get("sampling"), dict) else {}
    strategy = sampling.get("strategy") or "adaptive"
    networks = results.get("networks") or sampling.get("networks") or []
    if results.get("kind") == "dkp":
        ratio = sampling.get("ratio")
        return f"DKP {strategy}" + (f"-{ratio:g}" if isinstance(ratio, (int, float)) else "")
    if len(networks) == 1:
        name = str(networks[0]).capitalize()
        return name if strategy == "adaptive" else f"{name} ({strategy})"
    return str(results.get("kind") or "unknown")


def _number(mapping: dict[str, Any], key: str, where: str) -> float:
    if key not in mapping:
        raise _Skip(f"{where}{key} is missing")
    value = mapping[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Skip(f"{where}{key} is {json.dumps(value)}")  # null: it was not finite
    if not math.isfinite(value):
        raise _Skip(f"{where}{key} is not finite")
    return float(value)


def _optional(mapping: dict[str, Any], key: str, default: float) -> float:
    value = mapping.get(key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else default


def _section(results: dict[str, Any], key: str) -> dict[str, Any]:
    section = results.get(key)
    if not isinstance(section, dict):
        raise _Skip(f"no {key!r} object")
    return section


def _point(path: Path, results: Any, metric: str, split: str) -> CurvePoint:
    if not isinstance(results, dict):
        raise _Skip("not a JSON object")
    metrics, cost = _section(results, "metrics"), _section(results, "cost")
    value = _number(metrics, f"{split}/{metric}", "metrics.")
    if not 0.0 <= value <= 1.0:
        raise _Skip(f"metrics.{split}/{metric} = {value} is not a fraction in [0, 1]")
    return CurvePoint(
        series=series_label(results),
        gflops=_number(cost, "gflops", "cost."),
        gflops_std=_optional(cost, "gflops_std", 0.0),
        value=100.0 * value,
        metric=metric,
        frames_student=_optional(cost, "frames_student", math.nan),
        frames_teacher=_optional(cost, "frames_teacher", math.nan),
        source=str(path),
    )


def _failure(path: Path) -> str:
    try:
        error = read_results(path).get("error")
    except (OSError, ValueError, AttributeError) as err:
        return f"job failed (unreadable {FAILED_FILE}: {err})"
    first_line = str(error).strip().split("\n")[0][:200] if error else "no error recorded"
    return f"job failed: {first_line}"


def _auto_metric(loaded: Sequence[Any], split: str) -> str:
    """mAP if every run scored on ``split`` has it, else top1 (one metric for one y axis)."""
    scored = [r.get("metrics") for r in loaded if isinstance(r, dict)]
    keys = [f"{split}/{name}" for name in METRICS]
    scored = [m for m in scored if isinstance(m, dict) and any(k in m for k in keys)]
    return "mAP" if all(f"{split}/mAP" in m for m in scored) else "top1"


def collect_points(
    dirs: Sequence[str | Path], metric: str = "auto", split: str = "test"
) -> tuple[list[CurvePoint], list[tuple[str, str]]]:
    """Points from every results.json under ``dirs``, and the problems met as (path, reason):
    failed jobs and unusable results. ``metric="auto"``: mAP if all runs have it, else top1."""
    if metric != "auto" and metric not in METRICS:
        raise ValueError(f"metric: {metric!r} is not 'auto' or one of {METRICS}")
    problems: list[tuple[str, str]] = []
    loaded: list[tuple[Path, Any]] = []
    for root in map(Path, dirs):
        if not root.is_dir():
            problems.append((str(root), "not a directory"))
            continue
        for path in sorted(root.rglob(FAILED_FILE)):
            problems.append((str(path), _failure(path)))
        for path in sorted(root.rglob(RESULTS_FILE)):
            try:
                loaded.append((path, read_results(path)))
            except (OSError, ValueError) as err:  # JSONDecodeError and bad UTF-8 are ValueErrors
                problems.append((str(path), f"unreadable: {err}"))
    if metric == "auto":
        metric = _auto_metric([r for _, r in loaded], split)
    points = []
    for path, results in loaded:
        try:
            points.append(_point(path, results, metric, split))
        except _Skip as err:
            problems.append((str(path), str(err)))
    return points, problems


def _sorted(points: Sequence[CurvePoint]) -> list[CurvePoint]:
    return sorted(points, key=lambda p: (p.series, p.gflops, p.source))


def _num(x: float) -> str:
    """Floats for the CSV: ten significant digits, so 100 * 0.665 reads 66.5."""
    return "" if math.isnan(x) else format(x, ".10g")


def _cell(x: float, digits: int) -> str:
    return "–" if math.isnan(x) else f"{x:.{digits}f}"


def _shown_path(source: str, base: Path) -> str:
    """``source`` relative to ``base``, else to the working directory, when it lies under it
    (keeps committed tables portable)."""
    for root in (base, Path.cwd()):
        try:
            return Path(source).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
    return source


def _split_problems(
    problems: Sequence[tuple[str, str]],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Failed jobs (a failed.json) apart from the other problems."""
    failed = [(path, why) for path, why in problems if Path(path).name == FAILED_FILE]
    return failed, [item for item in problems if item not in failed]


def write_tables(
    points: Sequence[CurvePoint],
    out_dir: str | Path,
    problems: Sequence[tuple[str, str]] = (),
    name: str = "points",
) -> tuple[Path, Path]:
    """Write ``<name>.csv`` and ``<name>.md`` (sorted by series, then GFLOPs); the Markdown
    footer lists ``problems`` (failed jobs, skipped results)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = _sorted(points)
    csv_path, md_path = out_dir / f"{name}.csv", out_dir / f"{name}.md"
    columns = [f.name for f in fields(CurvePoint)]
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        for p in rows:
            shown = {**asdict(p), "source": _shown_path(p.source, out_dir)}
            writer.writerow(_num(v) if isinstance(v, float) else v for v in shown.values())
    metric = " / ".join(dict.fromkeys(AXIS_LABELS.get(p.metric, p.metric) for p in rows))
    lines = [
        f"| series | GFLOPs | ± | {metric or 'metric (%)'} | n_s | n_t | source |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for p in rows:
        cells = [
            p.series.replace("|", "\\|"),
            f"{p.gflops:.3f}",
            f"{p.gflops_std:.3f}",
            f"{p.value:.2f}",
            _cell(p.frames_student, 1),
            _cell(p.frames_teacher, 1),
            f"`{_shown_path(p.source, out_dir)}`",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    failed, skipped = _split_problems(problems)
    for title, items in (
        (f"Failed jobs: {len(failed)}", failed),
        (f"Skipped results: {len(skipped)}", skipped),
    ):
        if items:
            lines += ["", title, ""]
            lines += [f"- `{_shown_path(path, out_dir)}`: {why}" for path, why in items]
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


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
    fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
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
    ax.set_xlabel("GFLOPs / video")
    ax.set_ylabel(" / ".join(dict.fromkeys(AXIS_LABELS.get(p.metric, p.metric) for p in points)))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
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


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="dkp-curves",
        description="Draw accuracy-vs-GFLOPs curves and tables from every results.json under DIRs.",
    )
    parser.add_argument("dirs", nargs="+", metavar="DIR", help="run or sweep directories")
    parser.add_argument("--out", help="output directory (default: the first DIR)")
    parser.add_argument("--metric", default="auto", choices=("auto", *METRICS))
    parser.add_argument("--split", default="test", choices=("test", "val"))
    parser.add_argument("--title", default="")
    parser.add_argument("--name", default="curves", help="file name of figures and tables")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: collect, report problems, write figure and tables; 1 if there was nothing to plot."""
    args = _parse(argv)
    points, problems = collect_points(args.dirs, metric=args.metric, split=args.split)
    failed, skipped = _split_problems(problems)
    if failed:
        print(f"{len(failed)} failed job(s):")
        print("".join(f"  {path}: {why}\n" for path, why in failed), end="")
    if skipped:
        print(f"{len(skipped)} skipped result(s):")
        print("".join(f"  {path}: {why}\n" for path, why in skipped), end="")
    if not points:
        print(
            f"no {RESULTS_FILE} with usable results under {', '.join(args.dirs)}", file=sys.stderr
        )
        return 1
    out_dir = Path(args.out or args.dirs[0])
    figures = plot_curves(points, out_dir / args.name, title=args.title)
    tables = write_tables(points, out_dir, problems, name=args.name)
    series = sorted({p.series for p in points})
    print(f"{len(points)} point(s) in {len(series)} series: {', '.join(series)}")
    print("figure: " + ", ".join(map(os.fspath, figures)))
    print("tables: " + ", ".join(map(os.fspath, tables)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
