"""experiments/class_groups.py: a curve point's mAP per class group and top-1 by video length."""

from pathlib import Path

import numpy as np
import pytest

from dkp.evaluation.video_scores import VideoScores, write_scores
from experiments.class_groups import class_groups, main
from tests.data.annotations.test_activitynet import entry, touch, write
from tests.reporting.test_curves import put, result

# Sorted classes: Archery, Skiing (Sports), Walking the dog (Household).
DURATIONS = {"a": 10.0, "b": 50.0, "c": 20.0, "d": 40.0}
LABELS = {"a": "Archery", "b": "Skiing", "c": "Walking the dog", "d": "Walking the dog"}


def dataset(tmp_path: Path) -> Path:
    tmp_path.mkdir(parents=True)
    database = {v: entry("testing", DURATIONS[v], LABELS[v]) for v in DURATIONS}
    database["t"] = entry("training", 5.0, "Archery")  # another split: not read
    write(tmp_path, database)
    touch(tmp_path, *(f"v_{v}.mp4" for v in [*DURATIONS, "t"]))
    return tmp_path


def test_groups_follow_the_taxonomy(tmp_path: Path):
    path = write(tmp_path, {})
    classes = ["Archery", "Skiing", "Walking the dog"]
    assert class_groups(path, classes) == {"Sports": [0, 1], "Household": [2]}


def test_table_rows_per_point_and_group(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # sources are shown relative to the working directory
    data = dataset(tmp_path / "data")
    run = tmp_path / "runs" / "dkp" / "0"
    put(run / "results.json", result(series="DKP A", gflops=0.25))
    probs = np.array([[0.8, 0.1, 0.1], [0.4, 0.15, 0.45], [0.1, 0.1, 0.8], [0.5, 0.1, 0.4]])
    target = np.eye(3, dtype=np.uint8)[[0, 1, 2, 2]]
    write_scores(run / "scores.npz", VideoScores(np.array(list("abcd")), probs, target,
                                                 np.full(4, 0.25)))  # fmt: skip
    out = tmp_path / "figures" / "class_groups.md"
    assert main(["--data", str(data), "--replicates", "50", "--out", str(out),
                 str(tmp_path / "runs")]) == 0  # fmt: skip
    lines = out.read_text().splitlines()
    # median duration 30 s: a and c are short, b and d long; b (Skiing) and d (Walking) wrong
    header = lines[0].split(" | ")
    assert header[5:7] == ["top-1, videos < 30.0 s (%)", "top-1, videos >= 30.0 s (%)"]
    sports, household = (line.split(" | ") for line in lines[2:])
    assert sports[:4] == ["| DKP A", "0.250", "Sports", "2"]
    assert household[:4] == ["| DKP A", "0.250", "Household", "2"]
    assert sports[5].startswith("100.0 [") and sports[6].startswith("0.0 [")
    assert household[5].startswith("100.0 [") and household[6].startswith("0.0 [")
    # Archery and Skiing each rank their one video first: mAP 100 in every replicate drawing it
    assert sports[4].startswith("100.0 [")
    # Walking the dog ranks c first, then d after b: AP (1 + 2/3) / 2
    assert household[4].startswith("83.3 [")
    assert sports[7] == "`runs/dkp/0/results.json` |"
    assert (out.with_suffix(".csv")).is_file() and "Household" in capsys.readouterr().out


def test_points_without_scores_are_skipped_and_unknown_videos_named(tmp_path: Path, capsys):
    data = dataset(tmp_path / "data")
    put(tmp_path / "runs" / "old" / "results.json", result(series="DKP A"))
    assert main(["--data", str(data), str(tmp_path / "runs")]) == 0
    assert "no scores.npz beside it" in capsys.readouterr().err
    run = tmp_path / "runs" / "other"
    put(run / "results.json", result(series="DKP B"))
    stray = VideoScores(
        np.array(["zz"]), np.ones((1, 3)), np.eye(3, dtype=np.uint8)[:1], np.ones(1)
    )
    write_scores(run / "scores.npz", stray)
    with pytest.raises(ValueError, match=r"other/scores.npz: video 'zz' is not in .*\(testing\)"):
        main(["--data", str(data), str(tmp_path / "runs")])
