"""Exit-count tables (the supplement's), as CSV and Markdown."""

import math
from pathlib import Path

import numpy as np
import pytest

from dkp.reporting.points import CurvePoint
from dkp.reporting.tables import interval_cell, read_points, write_exit_counts, write_points


def point(series: str, gflops: float, value: float, source: str, std: float = 0.0) -> CurvePoint:
    return CurvePoint(series, gflops, std, value, "mAP", 16.0, 4.0, source)


def test_exit_tables(tmp_path):
    csv_path, md_path = write_exit_counts(
        {"Kinetics-400": [3433, 4292, 5365, 6706], "short": [1, 2]}, tmp_path
    )
    assert csv_path.read_text().splitlines() == [
        "Checkpoint,1,2,3,4,Total",
        "Kinetics-400,3433,4292,5365,6706,19796",
        "short,1,2,-,-,3",
    ]
    assert (
        md_path.read_text().splitlines()[2]
        == "| Kinetics-400 | 3433 | 4292 | 5365 | 6706 | 19796 |"
    )


def test_points_tables_exact(tmp_path: Path):
    points = [
        point("Teacher", 2.0, 70.0, str(tmp_path / "t" / "results.json")),
        point("DKP a", 0.4, 66.5, "/elsewhere/results.json"),
        point("DKP a", 0.2, 100 * 0.615, str(tmp_path / "d" / "results.json"), std=0.0125),
    ]
    failed = [(str(tmp_path / "f" / "failed.json"), "job failed: boom")]
    skipped = [("/x/results.json", "unreadable: bad")]
    csv_path, md_path = write_points(points, tmp_path, failed, skipped)
    assert csv_path.read_text().splitlines() == [
        "series,gflops,gflops_std,value,metric,frames_student,frames_teacher,source,num_videos,"
        "value_lo,value_hi",
        "DKP a,0.2,0.0125,61.5,mAP,16,4,d/results.json,0,,",
        "DKP a,0.4,0,66.5,mAP,16,4,/elsewhere/results.json,0,,",
        "Teacher,2,0,70,mAP,16,4,t/results.json,0,,",
    ]
    assert md_path.read_text() == (
        "| series | GFLOPs | ± | mAP (%) | 95% interval | n_s | n_t | source |\n"
        "|---|---:|---:|---:|---|---:|---:|---|\n"
        "| DKP a | 0.200 | 0.013 | 61.50 | – | 16.0 | 4.0 | `d/results.json` |\n"
        "| DKP a | 0.400 | 0.000 | 66.50 | – | 16.0 | 4.0 | `/elsewhere/results.json` |\n"
        "| Teacher | 2.000 | 0.000 | 70.00 | – | 16.0 | 4.0 | `t/results.json` |\n"
        "\n"
        "Failed jobs: 1\n"
        "\n"
        "- `f/failed.json`: job failed: boom\n"
        "\n"
        "Skipped results: 1\n"
        "\n"
        "- `/x/results.json`: unreadable: bad\n"
    )


def test_interval_cell_reads_value_and_percentile_interval():
    values = np.r_[50.0, np.arange(1.0, 101.0)]  # the full set, then 100 replicates
    assert interval_cell(values) == "50.0 [3.5, 97.5]"
    assert interval_cell(values - 50, sign="+") == "+0.0 [-46.5, +47.5]"
    assert interval_cell(np.full(3, np.nan)) == "–"


def test_points_table_reads_back_as_written(tmp_path: Path):
    sweeps = tmp_path / "sweeps"
    a = CurvePoint("DKP Adaptive-4", 0.0162, 0.0, 76.25, "mAP", 4.0, 1.0,
                   str(sweeps / "a" / "0" / "results.json"), 864, 73.5, 79.0)  # fmt: skip
    b = CurvePoint("Teacher", 0.0093, 0.001, 60.5, "mAP", float("nan"), 1.0,
                   str(sweeps / "t" / "0" / "results.json"))  # fmt: skip
    write_points([b, a], tmp_path / "figures", name="curves")
    back = read_points(tmp_path / "figures" / "curves.csv")
    assert [p.series for p in back] == ["DKP Adaptive-4", "Teacher"]
    assert back[0] == a
    assert back[1].num_videos == 0 and math.isnan(back[1].frames_student)
    assert math.isnan(back[1].value_lo) and back[1].gflops_std == 0.001


def test_reading_a_table_that_is_not_one_names_it(tmp_path: Path):
    (tmp_path / "empty.csv").write_text("series,gflops\n")
    with pytest.raises(ValueError, match=r"empty.csv: no points$"):
        read_points(tmp_path / "empty.csv")
    (tmp_path / "other.csv").write_text("series,gflops\nTeacher,0.1\n")
    with pytest.raises(ValueError, match=r"other.csv: not a points table \(no column gflops_std,"):
        read_points(tmp_path / "other.csv")
