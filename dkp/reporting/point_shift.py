"""How far curve points move from one run to another of the same points (a second test split,
another seed, another machine): points paired by their place in each run, the moves summarised.

A point's place is its ``results.json`` path under its run's root (``teacher/3/results.json``),
which the same sweep gives every run. The summary tells how much one draw of test videos (or a
seed, or a machine) moves a point, next to the bootstrap interval that estimates it. A point of
an exit curve reaches its budget at a cost of its own in each run, so it also moves along the
curve; B's curve read at A's GFLOPs (at equal cost) measures the move of the curve itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dkp.reporting.points import CurvePoint, series_points
from dkp.reporting.tables import write_table


@dataclass(frozen=True)
class PointShift:
    """One point in run A and in run B: GFLOPs and score (percent), A's 95 % interval."""

    series: str
    place: str
    gflops_a: float
    value_a: float
    lo_a: float
    hi_a: float
    gflops_b: float
    value_b: float
    value_b_equal: float = math.nan  # B's curve at gflops_a (NaN outside B's GFLOPs range)

    @property
    def delta(self) -> float:
        return self.value_b - self.value_a

    @property
    def delta_equal_cost(self) -> float:
        """B - A at A's GFLOPs: how far the curve moved there."""
        return self.value_b_equal - self.value_a

    @property
    def inside(self) -> bool:
        """Whether B's score lies in A's interval."""
        return self.in_interval(self.value_b)

    def in_interval(self, value: float) -> bool:
        """Whether ``value`` (B's score, or B's curve at A's GFLOPs) lies in A's interval."""
        return self.lo_a <= value <= self.hi_a


def _places(points: Sequence[CurvePoint], root: Path) -> dict[str, CurvePoint]:
    root = root.resolve()
    out = {}
    for p in points:
        source = Path(p.source).resolve()
        if source.is_relative_to(root):
            out[source.relative_to(root).as_posix()] = p
    return out


def pair_points(
    a: Sequence[CurvePoint], root_a: str | Path, b: Sequence[CurvePoint], root_b: str | Path
) -> list[PointShift]:
    """The points of A and B at the same place under their roots, in A's order. Raises when
    none pair or a pair's series differ (the two roots hold different sweeps)."""
    in_b = _places(b, Path(root_b))
    curves_b = _curves(list(in_b.values()))
    shifts = []
    for place, p in _places(a, Path(root_a)).items():
        q = in_b.get(place)
        if q is None:
            continue
        if q.series != p.series:
            raise ValueError(f"{place}: series {p.series!r} in A but {q.series!r} in B")
        xs, ys = curves_b[p.series]
        equal = float(np.interp(p.gflops, xs, ys)) if xs[0] <= p.gflops <= xs[-1] else math.nan
        shifts.append(
            PointShift(p.series, place, p.gflops, p.value, p.value_lo, p.value_hi, q.gflops,
                       q.value, equal)
        )  # fmt: skip
    if not shifts:
        raise ValueError(f"no point of {root_a} has a counterpart under {root_b}")
    return shifts


def _curves(points: Sequence[CurvePoint]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each series' (GFLOPs, score) by ascending GFLOPs, repeated runs at one place merged."""
    return {
        series: (np.array([m.gflops for m in members]), np.array([m.value for m in members]))
        for series, members in series_points(points).items()
    }


@dataclass(frozen=True)
class ShiftSummary:
    """The moves |B - A| over the paired points (mAP points), how many B scores lie in A's
    95 % interval, and ``sd``: one run's standard deviation around the points' true values,
    sqrt(mean((B - A)^2) / 2), pooled over the points (A and B independent draws)."""

    count: int
    median: float
    p90: float
    largest: float
    below: int  # moves smaller than ``limit``
    limit: float
    inside: int
    sd: float

    @classmethod
    def of(
        cls, shifts: Sequence[PointShift], limit: float = 1.5, equal_cost: bool = False
    ) -> ShiftSummary:
        """``equal_cost``: the moves at A's GFLOPs (points B's curve does not reach left out)."""
        pairs = [(s.value_b_equal if equal_cost else s.value_b, s) for s in shifts]
        pairs = [(b, s) for b, s in pairs if math.isfinite(b)]
        if not pairs:
            return cls(0, math.nan, math.nan, math.nan, 0, limit, 0, math.nan)
        deltas = np.array([b - s.value_a for b, s in pairs])
        moves = np.abs(deltas)
        return cls(
            len(moves),
            float(np.median(moves)),
            float(np.quantile(moves, 0.9)),
            float(moves.max()),
            int((moves < limit).sum()),
            limit,
            sum(s.in_interval(b) for b, s in pairs),
            float(np.sqrt(np.mean(deltas**2) / 2)),
        )

    def line(self) -> str:
        if not self.count:
            return "no points to compare"
        return (
            f"{self.count} points move by a median of {self.median:.1f}, 90 % of them by at "
            f"most {self.p90:.1f}, the largest by {self.largest:.1f}; {self.below} by less than "
            f"{self.limit:g}; {self.inside} land inside the first run's 95 % interval; one run's "
            f"standard deviation is {self.sd:.2f}"
        )


def write_shift_table(shifts: Sequence[PointShift], out_dir: str | Path, name: str) -> list[Path]:
    """``<name>.{md,csv}``: every paired point, A with its interval, B, B - A, and B - A at
    A's GFLOPs."""
    header = ["series", "point", "GFLOPs (A)", "A", "95% interval (A)", "GFLOPs (B)", "B",
              "B - A", "B - A at equal GFLOPs"]  # fmt: skip
    rows = [
        [s.series, s.place.removesuffix("/results.json"), f"{s.gflops_a:.4g}", f"{s.value_a:.1f}",
         f"[{s.lo_a:.1f}, {s.hi_a:.1f}]", f"{s.gflops_b:.4g}", f"{s.value_b:.1f}",
         f"{s.delta:+.1f}",
         f"{s.delta_equal_cost:+.1f}" if math.isfinite(s.delta_equal_cost) else "–"]
        for s in shifts
    ]  # fmt: skip
    return write_table(header, rows, out_dir, name)
