"""Two runs compared from their figures folders: points paired, verdict changes found."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from dkp.reporting.points import CurvePoint
from dkp.reporting.run_comparison import compare_runs, sweeps_root
from dkp.reporting.tables import write_csv_rows, write_points

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "compare_runs.py"
VERDICT_HEADER = ["claim", "where", "A - B", "95% interval", "verdict"]


def point(run: str, place: str, value: float, series: str = "Teacher") -> CurvePoint:
    source = f"outputs/{run}/sweeps/{place}/results.json"
    return CurvePoint(series, 0.01, 0.0, value, "mAP", 0, 1, source, 864, value - 2, value + 2)


def figures(root: Path, run: str, curves: list[CurvePoint], counts: list[CurvePoint],
            verdicts: list[list[str]]) -> Path:  # fmt: skip
    out = root / run
    write_points(curves, out, name="curves")
    write_points(counts, out, name="frame_counts")
    write_csv_rows(out / "verdicts.csv", [VERDICT_HEADER, *verdicts])
    return out


def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    early = "Early exit reaches its full model at a lower cost"
    above = "DKP above the teacher at equal GFLOPs"
    a = figures(
        tmp_path, "a",
        [point("curves", "teacher/0", 80.0), point("curves", "dkp/0", 90.0, "DKP")],
        [point("curves", "teacher/0", 80.0), point("curves", "nt5/0", 85.0, "nt-5")],
        [[early, "0.05 GFLOPs (70% of 0.07)", "-0.2", "[-0.6, +0.1]", "reaches its full model"],
         [above, "0.01 GFLOPs", "+5.0", "[+3.0, +7.0]", "DKP above Teacher"],
         [above, "0.02 GFLOPs", "+1.0", "[-1.0, +3.0]", "no difference measured"]],
    )  # fmt: skip
    b = figures(
        tmp_path, "b",
        [point("curves-other", "teacher/0", 83.0), point("curves-other", "dkp/0", 89.0, "DKP")],
        [point("curves-other", "nt5/0", 85.5, "nt-5")],
        [[early, "0.06 GFLOPs (80% of 0.07)", "-0.1", "[-0.4, +0.2]", "reaches its full model"],
         [above, "0.01 GFLOPs", "+4.0", "[+2.0, +6.0]", "DKP above Teacher"],
         [above, "0.02 GFLOPs", "+2.5", "[+0.5, +4.5]", "DKP above Teacher"]],
    )  # fmt: skip
    return a, b


def test_points_pair_across_runs_and_tables_and_verdict_changes_are_found(tmp_path: Path) -> None:
    a, b = two_runs(tmp_path)
    comparison = compare_runs(a, b, tmp_path / "out")
    assert [(s.place, s.delta) for s in comparison.shifts] == [
        ("dkp/0/results.json", -1.0),
        ("teacher/0/results.json", 3.0),
        ("nt5/0/results.json", 0.5),
    ]
    assert [(c.claim[:5], c.changed) for c in comparison.claims] == [
        ("Early", False),  # only where it is reached moved
        ("DKP a", True),  # "no difference measured" at 0.02 became "above"
    ]
    lines = comparison.lines()
    assert lines[0].startswith("all points: 3 points move by a median of 1.0")
    assert lines[1].startswith("all points, B's curves at A's GFLOPs: 3 points move by a median")
    assert any(line.startswith("Teacher: 1 points move by a median of 3.0,") for line in lines)
    assert lines[-2:] == [
        "claims with the same verdicts: 1 of 2",
        "changed: DKP above the teacher at equal GFLOPs: 1 × DKP above Teacher; "
        "1 × no difference measured -> 2 × DKP above Teacher",
    ]
    rows = list(csv.reader((tmp_path / "out" / "run_verdicts.csv").open()))
    assert rows[1] == [
        "Early exit reaches its full model at a lower cost",
        "reaches its full model (0.05 GFLOPs (70% of 0.07): -0.2)",
        "reaches its full model (0.06 GFLOPs (80% of 0.07): -0.1)",
        "yes",
    ]
    shift = list(csv.reader((tmp_path / "out" / "run_shift.csv").open()))
    assert shift[2][:2] == ["Teacher", "teacher/0"] and shift[2][-1] == "+3.0"


def test_points_of_two_runs_in_one_table_are_refused() -> None:
    points = [point("curves", "teacher/0", 80.0), point("curves-hard", "teacher/1", 80.0)]
    with pytest.raises(
        ValueError, match="more than one run: outputs/curves-hard/sweeps, outputs/curves/sweeps$"
    ):
        sweeps_root(points)
    loose = CurvePoint("Teacher", 0.01, 0.0, 80.0, "mAP", 0, 1, "elsewhere/results.json")
    with pytest.raises(ValueError, match="elsewhere/results.json: not under a 'sweeps' folder"):
        sweeps_root([loose])


def test_script_prints_the_summary_or_names_the_missing_table(tmp_path: Path) -> None:
    a, b = two_runs(tmp_path)
    done = subprocess.run([sys.executable, str(SCRIPT), str(a), str(b)], capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-2] == "claims with the same verdicts: 1 of 2"
    missing = subprocess.run([sys.executable, str(SCRIPT), str(a), str(tmp_path / "none")],
                             capture_output=True, text=True)  # fmt: skip
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"compare_runs: {tmp_path / 'none' / 'curves.csv'}: no such points table"
    )
