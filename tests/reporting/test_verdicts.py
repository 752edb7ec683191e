"""Verdicts: a claim is stated only where its paired 95 % interval separates the curves."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dkp.evaluation.bootstrap import map_replicates, replicate_weights
from dkp.reporting.points import SeriesPoint
from dkp.reporting.verdicts import Claim, check, write_verdicts

VIDEOS, CLASSES = 400, 4
RNG = np.random.default_rng(0)
TARGET = np.eye(CLASSES)[RNG.integers(0, CLASSES, VIDEOS)]
WEIGHTS = replicate_weights(VIDEOS, 500, 0)


def model(skill: float, seed: int) -> np.ndarray:
    """Scores whose true class stands out by ``skill`` against unit noise."""
    noise = np.random.default_rng(seed).normal(size=(VIDEOS, CLASSES))
    return noise + skill * TARGET


def point(series: str, gflops: float, skill: float, seed: int) -> SeriesPoint:
    reps = 100 * map_replicates(model(skill, seed), TARGET, WEIGHTS)
    value = float(100 * map_replicates(model(skill, seed), TARGET, np.ones((1, VIDEOS)))[0])
    return SeriesPoint(series, gflops, 0.0, value, np.nan, np.nan, 1, replicates=reps)


CURVES = {
    "A": [point("A", 1.0, 2.0, 1), point("A", 2.0, 2.5, 2), point("A", 3.0, 3.0, 3)],
    "B": [point("B", 0.5, 0.5, 4), point("B", 2.5, 1.0, 5)],
    "A again": [point("A again", 1.0, 2.0, 6), point("A again", 2.0, 2.5, 7)],
}


def test_better_at_equal_cost_is_stated_and_equal_models_are_not_told_apart():
    verdicts = check(Claim("A above B", "A", "B", "equal_cost"), CURVES)
    assert [v.where for v in verdicts] == ["1 GFLOPs", "2 GFLOPs"]  # A's points in B's range
    assert all(v.verdict == "A above B" and v.lo > 0 for v in verdicts)
    (same,) = check(Claim("A vs itself", "A", "A again", "lowest"), CURVES)
    assert same.verdict == "no difference measured" and same.lo < 0 < same.hi
    (worse,) = check(Claim("B above A", "B", "A", "lowest"), CURVES)
    assert worse.verdict == "B below A" and worse.where == "1 GFLOPs"


def test_an_exit_curve_reaching_one_cost_at_two_budgets_is_compared_there_once():
    twice = {**CURVES, "A": [CURVES["A"][0], CURVES["A"][0], *CURVES["A"][1:]]}
    verdicts = check(Claim("A above B", "A", "B", "equal_cost"), twice)
    assert [v.where for v in verdicts] == ["1 GFLOPs", "2 GFLOPs"]


def test_best_rises_and_reaches():
    (best,) = check(Claim("A's best above B's", "A", "B", "best"), CURVES)
    assert best.verdict == "A above B" and best.where == "3 vs 2.5 GFLOPs"
    (rises,) = check(Claim("A rises", "A", kind="rises"), CURVES)
    assert rises.verdict == "the last point above the first"
    flat = {"C": [point("C", g, 2.0, 10 + i) for i, g in enumerate((1.0, 2.0, 4.0))]}
    (reaches,) = check(Claim("C reaches its full model", "C", kind="reaches"), flat)
    assert reaches.where == "1 GFLOPs (25% of 4)"  # same skill everywhere: the cheapest
    assert reaches.verdict.startswith("reaches its full model")
    (late,) = check(Claim("A reaches", "A", kind="reaches"), CURVES)
    assert late.where.startswith("3 GFLOPs (100%")  # every cheaper point is worse


def test_reaches_another_curves_full_model_or_says_it_does_not():
    # against B's point nearest A's full cost: "A again" at 2 GFLOPs for A's 3
    (cheaper,) = check(Claim("A reaches A again", "A", "A again", "reaches"), CURVES)
    assert cheaper.where == "2 GFLOPs (100% of 2)"  # A at 1 GFLOPs is worse, at 2 the same
    assert cheaper.verdict == "reaches A again (no difference measured)"
    (never,) = check(Claim("B reaches A", "B", "A", "reaches"), CURVES)  # A near 2.5 GFLOPs
    assert never.verdict == "does not reach A" and never.where == "best: 2.5 GFLOPs"
    assert never.hi < 0


def test_missing_series_are_said_and_the_table_is_written(tmp_path):
    (missing,) = check(Claim("Z above B", "Z", "B"), CURVES)
    assert missing.verdict == "not measured (Z)"
    csv_path, md_path = write_verdicts([Claim("A above B", "A", "B", "lowest")], CURVES, tmp_path)
    lines = md_path.read_text().splitlines()
    assert lines[0] == "| claim | where | A - B | 95% interval | verdict |"
    assert lines[2].startswith("| A above B | 1 GFLOPs | +") and lines[2].endswith("A above B |")
    assert csv_path.read_text().count("\n") == 2
    with pytest.raises(ValueError, match="kind"):
        Claim("x", "A", "B", "somewhere")


def test_check_claims_script_names_a_missing_sweep_directory(tmp_path):
    script = Path(__file__).resolve().parents[2] / "experiments" / "check_claims.py"
    args = [sys.executable, str(script), "--out", str(tmp_path / "figures")]
    missing = subprocess.run([*args, str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"check_claims: {tmp_path / 'nope'}: no such sweep directory"
    empty = subprocess.run([*args, str(tmp_path)], capture_output=True, text=True)
    assert empty.stderr.strip() == f"check_claims: no results.json under {tmp_path}"
    assert not (tmp_path / "figures").exists()
