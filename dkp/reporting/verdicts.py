"""Claims about curves, decided from the results: a comparison is stated only where it holds.

A claim compares series A with series B. Every comparison is paired: both are scored on the
same bootstrap replicates of the test videos (:mod:`dkp.evaluation.bootstrap`), a curve is
read at another GFLOPs value by linear interpolation, replicate by replicate, and the 95 %
interval of the difference decides: "A above B" when it lies above 0, "A below B" when it
lies below 0, and "no difference measured" otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from dkp.evaluation.bootstrap import interpolate, interval
from dkp.reporting.points import SeriesPoint
from dkp.reporting.tables import write_csv_rows
from dkp.runtime.atomic import write_text

#: How a claim places its comparisons (see :class:`Claim`).
KINDS = ("equal_cost", "lowest", "best", "rises", "reaches")


@dataclass(frozen=True)
class Claim:
    """ "``a`` above ``b``", checked where ``kind`` says:

    * ``equal_cost``: at every GFLOPs value of A's points inside B's range (B interpolated);
    * ``lowest``: at the lowest GFLOPs value both curves reach;
    * ``best``: A's best point against B's best point, whatever their cost;
    * ``rises``: A's last point (most GFLOPs) against A's first (``b`` unused);
    * ``reaches``: the cheapest point of A not measurably below A's last point (its full
      model), or, given ``b``, below B's point nearest in GFLOPs to A's full model (B as
      trained, where A is a cheaper way to run it), and its cost as a share of that point's.
    """

    text: str
    a: str
    b: str = ""
    kind: str = "equal_cost"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"claim kind {self.kind!r} is not one of {KINDS}")


@dataclass(frozen=True)
class Verdict:
    """One comparison: where, the difference A - B and its 95 % interval, and the words."""

    claim: str
    where: str
    difference: float
    lo: float
    hi: float
    verdict: str


def _words(lo: float, hi: float, a: str, b: str) -> str:
    if lo > 0:
        return f"{a} above {b}"
    if hi < 0:
        return f"{a} below {b}"
    return "no difference measured"


def _reps(points: Sequence[SeriesPoint]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xs = np.asarray([p.gflops for p in points])
    values = np.asarray([p.value for p in points])
    return xs, values, np.stack([p.replicates for p in points])


def _compare(claim: Claim, a: Sequence[SeriesPoint], b: Sequence[SeriesPoint], x: float) -> Verdict:
    """A and B read at ``x`` GFLOPs."""
    ax, av, ar = _reps(a)
    bx, bv, br = _reps(b)
    diff = interpolate(x, ax, ar) - interpolate(x, bx, br)
    point = float(np.interp(x, ax, av) - np.interp(x, bx, bv))
    lo, hi = interval(diff)
    return Verdict(claim.text, f"{x:.3g} GFLOPs", point, lo, hi, _words(lo, hi, claim.a, claim.b))


def _pair(
    claim: Claim, a: SeriesPoint, b: SeriesPoint, where: str, names: tuple[str, str]
) -> Verdict:
    lo, hi = interval(a.replicates - b.replicates)
    return Verdict(claim.text, where, a.value - b.value, lo, hi, _words(lo, hi, *names))


def check(claim: Claim, curves: Mapping[str, Sequence[SeriesPoint]]) -> list[Verdict]:
    """The verdicts of ``claim`` on ``curves`` (series -> points by GFLOPs, with replicates);
    one "not measured" verdict where a series or its replicates are missing."""
    a = curves.get(claim.a, [])
    itself = claim.kind == "rises" or (claim.kind == "reaches" and not claim.b)
    b = a if itself else curves.get(claim.b, [])
    if not a or not b or any(p.replicates is None for p in (*a, *b)):
        missing = claim.a if not a else claim.b
        return [Verdict(claim.text, "-", np.nan, np.nan, np.nan, f"not measured ({missing})")]
    if claim.kind == "equal_cost":
        # once per cost: two budgets of an exit curve can end at one operating point
        inside = dict.fromkeys(p.gflops for p in a if b[0].gflops <= p.gflops <= b[-1].gflops)
        return [_compare(claim, a, b, x) for x in inside] or [
            Verdict(claim.text, "-", np.nan, np.nan, np.nan, "not measured (no common GFLOPs)")
        ]
    if claim.kind == "lowest":
        x = max(a[0].gflops, b[0].gflops)
        if x > min(a[-1].gflops, b[-1].gflops):
            return [Verdict(claim.text, "-", np.nan, np.nan, np.nan, "not measured (no overlap)")]
        return [_compare(claim, a, b, x)]
    if claim.kind == "best":
        best_a, best_b = max(a, key=lambda p: p.value), max(b, key=lambda p: p.value)
        where = f"{best_a.gflops:.3g} vs {best_b.gflops:.3g} GFLOPs"
        return [_pair(claim, best_a, best_b, where, (claim.a, claim.b))]
    if claim.kind == "rises":
        where = f"{a[-1].gflops:.3g} vs {a[0].gflops:.3g} GFLOPs"
        return [_pair(claim, a[-1], a[0], where, ("the last point", "the first"))]
    full = min(b, key=lambda p: abs(p.gflops - a[-1].gflops))  # reaches
    name = claim.b or "its full model"
    for p in a:
        verdict = _pair(claim, p, full, "", (claim.a, name))
        if verdict.hi >= 0:
            share = p.gflops / full.gflops
            where = f"{p.gflops:.3g} GFLOPs ({share:.0%} of {full.gflops:.3g})"
            text = f"reaches {name} (no difference measured)" if verdict.lo <= 0 else (
                f"above {name}"
            )  # fmt: skip
            return [Verdict(claim.text, where, verdict.difference, verdict.lo, verdict.hi, text)]
    best = max(a, key=lambda p: p.value)
    verdict = _pair(claim, best, full, f"best: {best.gflops:.3g} GFLOPs", (claim.a, name))
    return [replace(verdict, verdict=f"does not reach {name}")]


def write_verdicts(
    claims: Sequence[Claim], curves: Mapping[str, Sequence[SeriesPoint]], out_dir: str | Path,
    name: str = "verdicts",
) -> list[Path]:  # fmt: skip
    """Every claim's verdicts as ``<name>.csv`` and ``<name>.md`` (differences in points)."""
    verdicts = [v for claim in claims for v in check(claim, curves)]
    out_dir = Path(out_dir)
    header = ["claim", "where", "A - B", "95% interval", "verdict"]
    rows = [
        [v.claim, v.where, _num(v.difference), f"[{_num(v.lo)}, {_num(v.hi)}]", v.verdict]
        for v in verdicts
    ]
    csv_path = write_csv_rows(out_dir / f"{name}.csv", [header, *rows])
    lines = ["| " + " | ".join(header) + " |", "|---|---|---:|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    md_path = write_text(out_dir / f"{name}.md", "\n".join(lines) + "\n")
    return [csv_path, md_path]


def _num(x: float) -> str:
    return "–" if not np.isfinite(x) else f"{x:+.1f}"
