"""Pairing the points of two runs and summarising how far they move."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import pytest

from dkp.reporting.point_shift import ShiftSummary, pair_points, write_shift_table
from dkp.reporting.points import CurvePoint


def point(
    root: Path, place: str, value: float, series: str = "Teacher", gflops: float = 0.01
) -> CurvePoint:
    source = str(root / place / "results.json")
    return CurvePoint(series, gflops, 0.0, value, "mAP", 0, 1, source, 432, value - 2, value + 2)


def test_points_pair_by_place_under_their_roots(tmp_path: Path) -> None:
    a_root, b_root = tmp_path / "a" / "sweeps", tmp_path / "b" / "sweeps"
    a = [point(a_root, "teacher/0", 80.0), point(a_root, "teacher/1", 90.0),
         point(a_root, "teacher/seed1/0", 81.0)]  # fmt: skip
    b = [point(b_root, "teacher/1", 93.0), point(b_root, "teacher/0", 79.0)]
    shifts = pair_points(a, a_root, b, b_root)
    assert [(s.place, s.delta) for s in shifts] == [
        ("teacher/0/results.json", -1.0),
        ("teacher/1/results.json", 3.0),
    ]
    assert [s.inside for s in shifts] == [True, False]


def test_summary_counts_moves_and_interval_hits(tmp_path: Path) -> None:
    a = [point(tmp_path / "a", f"s/{i}", 80.0) for i in range(5)]
    b = [point(tmp_path / "b", f"s/{i}", 80.0 + d) for i, d in enumerate([0.5, -1, 1.5, -3, 2])]
    summary = ShiftSummary.of(pair_points(a, tmp_path / "a", b, tmp_path / "b"))
    assert (summary.count, summary.median, summary.largest) == (5, 1.5, 3.0)
    assert summary.below == 2  # 0.5 and 1: strictly below 1.5
    assert summary.inside == 4  # all but the move of 3 land in [78, 82]
    assert summary.p90 == pytest.approx(2.6)
    assert summary.sd == pytest.approx((16.5 / 5 / 2) ** 0.5)  # 0.25 + 1 + 2.25 + 9 + 4 = 16.5
    assert summary.line().endswith("one run's standard deviation is 1.28")
    assert summary.line().startswith("5 points move by a median of 1.5")


def test_runs_of_different_sweeps_are_refused(tmp_path: Path) -> None:
    a = [point(tmp_path / "a", "x/0", 80.0, "Teacher")]
    b = [point(tmp_path / "b", "x/0", 80.0, "Student")]
    with pytest.raises(ValueError, match="x/0/results.json: series 'Teacher' in A but 'Student'"):
        pair_points(a, tmp_path / "a", b, tmp_path / "b")
    with pytest.raises(ValueError, match="no point of"):
        pair_points(a, tmp_path / "a", [point(tmp_path / "b", "y/0", 80.0)], tmp_path / "b")


def test_an_exit_curve_point_that_moved_along_the_curve_did_not_move_at_equal_cost(
    tmp_path: Path,
) -> None:
    """B reaches each budget at more GFLOPs than A, but on A's curve: its points moved, its
    curve did not."""
    a_root, b_root = tmp_path / "a", tmp_path / "b"
    curve = [(0.02, 70.0), (0.03, 80.0), (0.04, 90.0)]
    a = [point(a_root, f"exit/{i}", v, "Exit", g) for i, (g, v) in enumerate(curve)]
    b_curve = [(0.025, 75.0), (0.035, 85.0), (0.04, 91.0)]
    b = [point(b_root, f"exit/{i}", v, "Exit", g) for i, (g, v) in enumerate(b_curve)]
    shifts = pair_points(a, a_root, b, b_root)
    assert [round(s.delta, 6) for s in shifts] == [5.0, 5.0, 1.0]
    assert [round(s.delta_equal_cost, 6) for s in shifts[1:]] == [0.0, 1.0]
    assert math.isnan(shifts[0].delta_equal_cost)  # 0.02: below B's cheapest point
    summary = ShiftSummary.of(shifts, equal_cost=True)
    assert (summary.count, summary.largest, summary.below, summary.inside) == (2, 1.0, 2, 2)
    assert ShiftSummary.of(shifts[:1], equal_cost=True).line() == "no points to compare"
    write_shift_table(shifts, tmp_path, "shift")
    assert [r[-1] for r in csv.reader((tmp_path / "shift.csv").open())][1:] == ["–", "+0.0", "+1.0"]


def test_table_lists_every_pair(tmp_path: Path) -> None:
    a = [point(tmp_path / "a", "teacher/0", 80.0)]
    b = [point(tmp_path / "b", "teacher/0", 82.25)]
    write_shift_table(pair_points(a, tmp_path / "a", b, tmp_path / "b"), tmp_path, "shift")
    rows = list(csv.reader((tmp_path / "shift.csv").open()))
    assert rows[1] == ["Teacher", "teacher/0", "0.01", "80.0", "[78.0, 82.0]", "0.01", "82.2",
                       "+2.2", "+2.2"]  # fmt: skip
    assert "| Teacher | teacher/0 |" in (tmp_path / "shift.md").read_text()


def test_second_split_needs_a_finished_run(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[2] / "experiments" / "second_test_split.py"
    done = subprocess.run(
        [sys.executable, str(script), "--runs", str(tmp_path), "--data", str(tmp_path / "d")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    missing = tmp_path / "train" / "teacher" / "results.json"
    assert done.stderr.strip() == f"{missing} is missing: run make curves first"
    assert not (tmp_path / "d").exists()
