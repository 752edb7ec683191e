import json
import math
from pathlib import Path

import numpy as np
import pytest

from dkp.reporting.points import T_975, CurvePoint, collect_points, series_points
from dkp.reporting.verdicts import Claim, check


def run(
    series: str,
    gflops: float,
    value: float,
    budget: float | None = None,
    reps: list[float] | None = None,
) -> CurvePoint:
    """One seed's point; ``budget``: an exit curve's budget fraction."""
    replicates = np.asarray(reps if reps is not None else [value - 1, value, value + 1])
    return CurvePoint(
        series, gflops, 0.01, value, "mAP", 0.0, 4.0, f"{series}/{gflops}", 96,
        value - 1, value + 1, replicates, budget_fraction=budget,
    )  # fmt: skip


def test_seeds_of_a_sweep_meet_at_one_gflops_value():
    curves = series_points(
        [run("DKP", 0.2, 60.0), run("DKP", 0.4, 70.0), run("DKP", 0.2, 62.0), run("DKP", 0.2, 64.0)]
    )
    low, high = curves["DKP"]
    assert (low.gflops, low.value, low.seeds, high.seeds) == (0.2, 62.0, 3, 1)
    half = T_975[3] * 2.0 / math.sqrt(3)  # the three values' standard deviation is 2
    assert low.seed_lo == pytest.approx(62.0 - half) and low.seed_hi == pytest.approx(62.0 + half)
    np.testing.assert_allclose(low.replicates, [61.0, 62.0, 63.0])
    assert math.isnan(high.seed_lo)


def test_seeds_of_an_exit_curve_meet_at_one_budget_whatever_their_cost():
    seeds = [
        [run("Exit", 0.031, 80.0, 0.5), run("Exit", 0.040, 84.0, 0.7), run("Exit", 0.06, 85.0, 1)],
        [run("Exit", 0.025, 78.0, 0.5), run("Exit", 0.044, 86.0, 0.7), run("Exit", 0.06, 87.0, 1)],
    ]
    curve = series_points([p for seed in seeds for p in seed])["Exit"]
    assert [p.seeds for p in curve] == [2, 2, 2]
    assert [p.gflops for p in curve] == pytest.approx([0.028, 0.042, 0.060])
    assert [p.value for p in curve] == [79.0, 85.0, 86.0]


def test_a_seeds_cheap_lucky_point_does_not_decide_where_early_exit_reaches_its_full_model():
    """One seed reaches its full model (86) already at half the budget; the other seed's
    half-budget point is far below. The mean curve reaches it only at 70 %."""
    sharp = [-0.3, 0.0, 0.3]
    seeds = [
        [run("Exit", 0.030, 86.0, 0.5, [86 + d for d in sharp]),
         run("Exit", 0.042, 86.0, 0.7, [86 + d for d in sharp]),
         run("Exit", 0.060, 86.0, 1.0, [86 + d for d in sharp])],
        [run("Exit", 0.030, 76.0, 0.5, [76 + d for d in sharp]),
         run("Exit", 0.042, 86.0, 0.7, [86 + d for d in sharp]),
         run("Exit", 0.060, 86.0, 1.0, [86 + d for d in sharp])],
    ]  # fmt: skip
    claim = Claim("Early exit reaches its full model at a lower cost", "Exit", kind="reaches")
    (verdict,) = check(claim, series_points([p for seed in seeds for p in seed]))
    assert verdict.where == "0.042 GFLOPs (70% of 0.06)"
    assert verdict.verdict == "reaches its full model (no difference measured)"


def test_collect_points_reads_an_exit_curves_budget_fraction(tmp_path: Path):
    def results(budget: float | None) -> dict:
        exits = {"counts": [60, 36], "thresholds": [0.5, 0.5], "checkpoint_gflops": [0.1, 0.2]}
        return {
            "task": "exits", "kind": "early_exit", "series": "Exit", "split": "test",
            "metrics": {"test/mAP": 0.8}, "cost": {"gflops": 0.14}, "num_videos": 96,
            "exits": {**exits, "budget_fraction": budget} if budget is not None else exits,
        }  # fmt: skip

    for name, budget in (("a", 0.7), ("b", None)):
        path = tmp_path / name / "results.json"
        path.parent.mkdir()
        path.write_text(json.dumps(results(budget)))
    points, problems = collect_points([tmp_path])
    assert problems == []
    assert sorted((Path(p.source).parent.name, p.budget_fraction) for p in points) == [
        ("a", 0.7),
        ("b", None),
    ]
