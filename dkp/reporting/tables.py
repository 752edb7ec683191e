"""Tables of results, as CSV and Markdown: curve points, and videos stopping at each checkpoint."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from dkp.evaluation.bootstrap import interval
from dkp.reporting.points import CurvePoint
from dkp.runtime.atomic import write_text
from dkp.runtime.results import Results

#: The columns of a points table: :class:`~dkp.reporting.curves.CurvePoint`'s fields.
POINT_COLUMNS = (
    "series",
    "gflops",
    "gflops_std",
    "value",
    "metric",
    "frames_student",
    "frames_teacher",
    "source",
    "num_videos",
    "value_lo",
    "value_hi",
)
AXIS_LABELS = {"mAP": "mAP (%)", "top1": "Top-1 accuracy (%)", "top5": "Top-5 accuracy (%)"}


def write_csv_rows(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    """Write ``rows`` (the header first) as CSV, atomically."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return write_text(path, text.getvalue())


def _sorted(points: Sequence[CurvePoint]) -> list[CurvePoint]:
    return sorted(points, key=lambda p: (p.series, p.gflops, p.source))


def _num(x: float) -> str:
    """Floats for the CSV: ten significant digits, so 100 * 0.665 reads 66.5."""
    return "" if math.isnan(x) else format(x, ".10g")


def _cell(x: float, digits: int) -> str:
    return "–" if math.isnan(x) else f"{x:.{digits}f}"


def interval_cell(values: np.ndarray, sign: str = "") -> str:
    """``"v [lo, hi]"``: the full-set value (first) and the 95 % interval of the bootstrap
    replicates (the rest), one decimal; ``sign="+"`` signs differences; NaN reads "–"."""
    if np.isnan(values[0]):
        return "–"
    lo, hi = interval(values[1:])
    return f"{values[0]:{sign}.1f} [{lo:{sign}.1f}, {hi:{sign}.1f}]"


def shown_path(source: str, base: Path) -> str:
    """``source`` relative to ``base``, else to the working directory, when it lies under it
    (keeps committed tables portable)."""
    for root in (base, Path.cwd()):
        try:
            return Path(source).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
    return source


def write_points(
    points: Sequence[CurvePoint],
    out_dir: str | Path,
    failed: Sequence[tuple[str, str]] = (),
    skipped: Sequence[tuple[str, str]] = (),
    name: str = "points",
) -> list[Path]:
    """Write ``<name>.csv`` and ``<name>.md`` (sorted by series, then GFLOPs); the Markdown
    footer lists the ``failed`` jobs and ``skipped`` results (path, why)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = _sorted(points)
    csv_path, md_path = out_dir / f"{name}.csv", out_dir / f"{name}.md"
    table: list[list[object]] = [list(POINT_COLUMNS)]
    for p in rows:
        shown = {
            **{k: getattr(p, k) for k in POINT_COLUMNS},
            "source": shown_path(p.source, out_dir),
        }
        table.append([_num(v) if isinstance(v, float) else v for v in shown.values()])
    write_csv_rows(csv_path, table)
    metric = " / ".join(dict.fromkeys(AXIS_LABELS.get(p.metric, p.metric) for p in rows))
    lines = [
        f"| series | GFLOPs | ± | {metric or 'metric (%)'} | 95% interval | n_s | n_t | source |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for p in rows:
        cells = [
            p.series.replace("|", "\\|"),
            f"{p.gflops:.3f}",
            f"{p.gflops_std:.3f}",
            f"{p.value:.2f}",
            "–" if math.isnan(p.value_lo) else f"[{p.value_lo:.1f}, {p.value_hi:.1f}]",
            _cell(p.frames_student, 1),
            _cell(p.frames_teacher, 1),
            f"`{shown_path(p.source, out_dir)}`",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for title, items in (
        (f"Failed jobs: {len(failed)}", failed),
        (f"Skipped results: {len(skipped)}", skipped),
    ):
        if items:
            lines += ["", title, ""]
            lines += [f"- `{shown_path(path, out_dir)}`: {why}" for path, why in items]
    write_text(md_path, "\n".join(lines) + "\n")
    return [csv_path, md_path]


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """A CSV table's rows, keyed by its header."""
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f))


def read_points(path: str | Path) -> list[CurvePoint]:
    """The points of a ``<name>.csv`` that :func:`write_points` wrote (sources as written:
    relative to where the run was made), without bootstrap replicates."""
    path = Path(path)
    rows = read_rows(path)
    if not rows:
        raise ValueError(f"{path}: no points")
    missing = [c for c in POINT_COLUMNS if c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: not a points table (no column {', '.join(missing)})")
    text = {"series", "metric", "source"}

    def value(row: dict[str, str], column: str) -> object:
        if column in text:
            return row[column]
        if column == "num_videos":
            return int(row[column] or 0)
        return float(row[column]) if row[column] else math.nan

    return [CurvePoint(**{c: value(row, c) for c in POINT_COLUMNS}) for row in rows]


def write_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], out_dir: str | Path, name: str
) -> list[Path]:
    """A table of text cells as ``<name>.csv`` and ``<name>.md`` (first column left-aligned,
    the others right-aligned), atomically."""
    out_dir = Path(out_dir)
    csv_path = write_csv_rows(out_dir / f"{name}.csv", [header, *rows])
    md_path = write_text(out_dir / f"{name}.md", markdown_table(header, rows))
    return [csv_path, md_path]


def emit_table(header: Sequence[str], rows: Sequence[Sequence[str]], out: Path | None) -> None:
    """Print the table as Markdown and, given ``out`` (``F.md``), write it there and as
    ``F.csv`` beside it: what a report script ends with."""
    print(markdown_table(header, rows), end="")
    if out:
        write_table(header, rows, out.parent, out.stem)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table of text cells, first column left-aligned, the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_exit_counts(
    rows: Mapping[str, Sequence[int]], out_dir: str | Path, name: str = "exit_counts"
) -> list[Path]:
    """The supplement's table: videos stopping at each checkpoint and the total, one row per
    run; as ``<name>.csv`` and ``<name>.md``. Rows may have different checkpoint counts."""
    width = max(len(c) for c in rows.values())
    header = ["Checkpoint", *[str(i + 1) for i in range(width)], "Total"]
    table = [
        [label, *[str(n) for n in counts], *["-"] * (width - len(counts)), str(sum(counts))]
        for label, counts in rows.items()
    ]
    return write_table(header, table, out_dir, name)


def exit_counts_near(
    curves: Mapping[str, Sequence[Results]], out_dir: str | Path, fraction: float = 0.5
) -> list[Path]:
    """The supplement's table across models: per series, the exit counts of its point whose
    budget fraction is nearest ``fraction``; ``out_dir/exit_counts.{csv,md}``."""
    rows = {}
    for series, points in curves.items():
        budgeted = [p for p in points if p.exits and p.exits.budget_fraction is not None]
        if budgeted:
            p = min(budgeted, key=lambda p: abs(p.exits.budget_fraction - fraction))
            rows[f"{series} ({p.exits.budget_fraction:.0%} budget)"] = p.exits.counts
    return write_exit_counts(rows, out_dir)
