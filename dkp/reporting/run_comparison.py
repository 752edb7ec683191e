"""Two `make curves` runs compared from their tables alone: how far each point moved, and which
claims changed verdict. Tables are all it needs, so a run on another machine (or the published
tables in ``docs/figures``) is checked against one's own without either run's files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dkp.reporting.point_shift import PointShift, ShiftSummary, pair_points, write_shift_table
from dkp.reporting.points import CurvePoint
from dkp.reporting.tables import read_points, read_rows, write_table

#: The points tables `make curves` writes (a point may be in both; it counts once).
POINT_TABLES = ("curves.csv", "frame_counts.csv")
VERDICTS_TABLE = "verdicts.csv"


def table_points(figures: str | Path) -> list[CurvePoint]:
    """Every point of a run's figures folder (``curves.csv`` must be there), each once."""
    figures = Path(figures)
    if not (figures / POINT_TABLES[0]).is_file():
        raise FileNotFoundError(f"{figures / POINT_TABLES[0]}: no such points table")
    points: dict[str, CurvePoint] = {}
    for name in POINT_TABLES:
        if (figures / name).is_file():
            for p in read_points(figures / name):
                points.setdefault(p.source, p)
    return list(points.values())


def sweeps_root(points: Sequence[CurvePoint]) -> Path:
    """The ``sweeps`` folder every point's source lies under (a `make curves` run's layout)."""
    roots = set()
    for p in points:
        parts = Path(p.source).parts
        if "sweeps" not in parts:
            raise ValueError(f"{p.source}: not under a 'sweeps' folder")
        last = len(parts) - 1 - parts[::-1].index("sweeps")
        roots.add(Path(*parts[: last + 1]))
    if len(roots) != 1:
        raise ValueError(f"points of more than one run: {', '.join(sorted(map(str, roots)))}")
    return roots.pop()


@dataclass(frozen=True)
class ClaimVerdicts:
    """One claim's rows in run A and run B (rows of ``verdicts.csv``). It changed when a
    verdict is reached in one run and not the other; not when only where it was decided, or
    at how many equal costs, moved (curves of other points are compared at other costs)."""

    claim: str
    a: list[dict[str, str]]
    b: list[dict[str, str]]

    @property
    def changed(self) -> bool:
        return {r["verdict"] for r in self.a} != {r["verdict"] for r in self.b}


def _counts(rows: Sequence[dict[str, str]]) -> Counter[str]:
    return Counter(row["verdict"] for row in rows)


def _cell(rows: Sequence[dict[str, str]]) -> str:
    """ "verdict" (with where, for a one-row claim), or "n × verdict; ..."; "–" for none."""
    if len(rows) == 1:
        return f"{rows[0]['verdict']} ({rows[0]['where']}: {rows[0]['A - B']})"
    return "; ".join(f"{n} × {v}" for v, n in _counts(rows).items()) or "–"


def claim_verdicts(a: Sequence[dict[str, str]], b: Sequence[dict[str, str]]) -> list[ClaimVerdicts]:
    """The claims of two verdict tables, in A's order, then B's."""
    claims = dict.fromkeys(row["claim"] for row in [*a, *b])
    return [
        ClaimVerdicts(c, [r for r in a if r["claim"] == c], [r for r in b if r["claim"] == c])
        for c in claims
    ]


@dataclass(frozen=True)
class RunComparison:
    shifts: list[PointShift]
    claims: list[ClaimVerdicts]

    def lines(self) -> list[str]:
        """The summary: every point, each series, and the claims whose verdicts changed."""
        out = [f"all points: {ShiftSummary.of(self.shifts).line()}"]
        equal = ShiftSummary.of(self.shifts, equal_cost=True)
        out.append(f"all points, B's curves at A's GFLOPs: {equal.line()}")
        for series in dict.fromkeys(s.series for s in self.shifts):
            mine = [s for s in self.shifts if s.series == series]
            out.append(f"{series}: {ShiftSummary.of(mine).line()}")
        changed = [c for c in self.claims if c.changed]
        same = len(self.claims) - len(changed)
        out.append(f"claims with the same verdicts: {same} of {len(self.claims)}")
        out += [f"changed: {c.claim}: {_cell(c.a)} -> {_cell(c.b)}" for c in changed]
        return out


def compare_runs(a: str | Path, b: str | Path, out: str | Path | None = None) -> RunComparison:
    """Run A's figures folder against run B's; with ``out``, write ``run_shift.{md,csv}`` (every
    paired point) and ``run_verdicts.{md,csv}`` (every claim's verdicts in both)."""
    points_a, points_b = table_points(a), table_points(b)
    shifts = pair_points(points_a, sweeps_root(points_a), points_b, sweeps_root(points_b))
    verdicts = [Path(a) / VERDICTS_TABLE, Path(b) / VERDICTS_TABLE]
    rows = [read_rows(p) if p.is_file() else [] for p in verdicts]
    comparison = RunComparison(shifts, claim_verdicts(*rows))
    if out is not None:
        write_shift_table(shifts, out, "run_shift")
        header = ["claim", "verdicts in A", "verdicts in B", "same"]
        table = [[c.claim, _cell(c.a), _cell(c.b), "no" if c.changed else "yes"]
                 for c in comparison.claims]  # fmt: skip
        write_table(header, table, out, "run_verdicts")
    return comparison
