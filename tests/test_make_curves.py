"""`make curves` as steps (experiments/make_curves.py): what runs, after what, on which
checkpoints and into which folders; every command built as the pipeline builds it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dkp.runtime.results import CostSummary, Results, write_results
from experiments.make_curves import CLAIMS, STAGES, other_seeds, pipeline

REPO = Path(__file__).resolve().parents[1]
SHORT = "--min-duration 2 --max-duration 8 --workers 1"  # videos of 2 to 8 s
TINY = f"--videos-per-class 3 2 2 {SHORT}"


def finish_training(runs: Path, tag: str = "") -> None:
    """Every stage's results.json, its best checkpoint named for its stage and seed."""
    for stage in STAGES:
        best = f"/ckpt/{stage}{tag}.ckpt"
        results = Results(metrics={}, cost=CostSummary(1.0), best_checkpoint=best)
        write_results(runs / "train" / stage / tag / "results.json", results)


def annotations(data: Path) -> None:
    """Two validation videos of two classes (the frame figures draw one per class)."""
    entry = {"subset": "validation", "duration": 10.0}
    database = {
        "a": {**entry, "annotations": [{"label": "x", "segment": [1.0, 2.0]}]},
        "b": {**entry, "annotations": [{"label": "y", "segment": [1.0, 2.0]}]},
    }
    data.mkdir(parents=True)
    (data / "activity_net.v1-3.min.json").write_text(json.dumps({"database": database}))


def value(command: list[str], key: str) -> str:
    (found,) = [arg.split("=", 1)[1] for arg in command if arg.startswith(f"{key}=")]
    return found


@pytest.mark.parametrize(
    ("seeds", "quick", "counts"),
    [  # trainings, sweeps, exit curves, reports: the total the progress line counts to
        (1, False, (5, 8, 4, 7)),
        (3, False, (15, 24, 12, 7)),
        (1, True, (5, 4, 4, 6)),
    ],
)
def test_the_pipeline_counts_every_step_it_runs(tmp_path, seeds, quick, counts):
    annotations(tmp_path / "data")
    steps, reports = pipeline(tmp_path / "runs", tmp_path / "data", tmp_path / "fig", seeds, quick)
    kinds = [s.kind for s in steps]
    assert (kinds.count("train"), kinds.count("sweep"), kinds.count("exit")) == counts[:3]
    assert len(steps) == sum(counts[:3]) and [s.kind for s in reports] == ["report"] * counts[3]
    names = {s.name for s in steps}
    assert len(names) == len(steps) and all(set(s.needs) <= names for s in steps)


def test_each_seed_trains_and_scores_on_its_own_checkpoints(tmp_path):
    runs, data = tmp_path / "runs", tmp_path / "data"
    annotations(data)
    steps, _ = pipeline(runs, data, tmp_path / "fig", seeds=2)
    by_name = {s.name: s for s in steps}
    for tag in ("", "seed1"):
        finish_training(runs, tag)
    dkp = by_name["train_dkp_fixedseed1"]
    assert dkp.needs == ("train_teacherseed1", "train_studentseed1")
    command = dkp.command()
    assert value(command, "model.teacher_ckpt") == "/ckpt/teacherseed1.ckpt"
    assert value(command, "model.student_ckpt") == "/ckpt/studentseed1.ckpt"
    assert value(command, "seed") == "1"
    assert value(command, "hydra.run.dir") == str(runs / "train" / "dkp_fixed" / "seed1")
    sweep = by_name["sweep_dkp_fixed8"]
    assert sweep.needs == ("train_dkp_fixed",)
    command = sweep.command()
    assert value(command, "ckpt_path") == "/ckpt/dkp_fixed.ckpt"
    assert value(command, "sampling.ratio") == "8"
    assert value(command, "hydra.sweep.dir") == str(runs / "sweeps" / "dkp_fixed8")
    curve = by_name["dynamic_dkpseed1"].command()
    assert value(curve, "ckpt_path") == "/ckpt/dkp_adaptiveseed1.ckpt"
    assert value(curve, "hydra.run.dir") == str(runs / "sweeps" / "dynamic_dkp" / "seed1")


def test_reports_read_what_the_sweeps_left_when_they_start(tmp_path):
    runs, data, figures = tmp_path / "runs", tmp_path / "data", tmp_path / "fig"
    annotations(data)
    _, reports = pipeline(runs, data, figures)
    by_name = {s.name: s for s in reports}
    assert list(by_name) == [
        "frame_choice", "verdicts", "curves", "frame_counts", "class_groups", "coverage",
        "frame_figures",
    ]  # fmt: skip
    finish_training(runs)
    swept = runs / "sweeps"
    for name in ("teacher", "student", "nt5"):  # ns-20's sweep did not run
        (swept / name / "0").mkdir(parents=True)
    frame_counts = by_name["frame_counts"].command()
    assert frame_counts[-3:] == [str(swept / n / "0") for n in ("teacher", "student", "nt5")]
    assert not any("ns20" in arg for arg in by_name["verdicts"].command())
    coverage = by_name["coverage"].command()
    assert coverage[-4:] == [
        "--ckpt",
        "/ckpt/dkp_adaptive.ckpt",
        "--out",
        str(figures / "coverage.md"),
    ]
    drawn = by_name["frame_figures"].command()
    videos = [arg for arg in drawn if arg.endswith(".mp4")]
    assert videos == [str(data / "videos" / "v_a.mp4"), str(data / "videos" / "v_b.mp4")]


def test_a_report_before_its_training_names_what_is_missing(tmp_path):
    annotations(tmp_path / "data")
    _, reports = pipeline(tmp_path / "runs", tmp_path / "data", tmp_path / "fig")
    missing = tmp_path / "runs" / "train" / "dkp_adaptive" / "results.json"
    with pytest.raises(SystemExit, match=f"{missing} is missing: run make curves first"):
        reports[0].command()


def test_reports_read_only_the_seeds_asked_for(tmp_path):
    runs, data = tmp_path / "runs", tmp_path / "data"
    annotations(data)
    finish_training(runs)
    teacher = runs / "sweeps" / "teacher"
    for job in ("0", "1", "seed1/0", "seed2/0", "seed2/1"):
        (teacher / job).mkdir(parents=True)
    (teacher / "multirun.yaml").touch()
    for seeds, shown in (
        (1, ["0", "1"]),
        (2, ["0", "1", "seed1"]),
        (3, ["0", "1", "seed1", "seed2"]),
    ):
        _, reports = pipeline(runs, data, tmp_path / "fig", seeds=seeds)
        drawn = {s.name: s for s in reports}["frame_counts"].command()
        assert [arg for arg in drawn if str(teacher) in arg] == [str(teacher / j) for j in shown]
        verdicts = {s.name: s for s in reports}["verdicts"].command()
        assert str(runs / "sweeps" / "student") in verdicts  # not run yet: the reader names it


def test_seeds_an_earlier_run_left_are_named(tmp_path):
    for folder in ("teacher/0", "teacher/seed1", "teacher/seed2", "ns20/seed12", "nt5/seedx"):
        (tmp_path / "sweeps" / folder).mkdir(parents=True)
    assert other_seeds(tmp_path, seeds=1) == ["seed1", "seed2", "seed12"]
    assert other_seeds(tmp_path, seeds=3) == ["seed12"]
    assert other_seeds(tmp_path / "nothing", seeds=1) == []


@pytest.mark.slow
def test_the_quick_pipeline_draws_everything_a_rerun_only_redraws_and_a_split_pairs(tmp_path):
    """`make curves-quick` on a tiny dataset (under a minute), then again: the second run
    finds every training, sweep and exit curve done and writes the same tables; then
    second_test_split.py scores its models on another draw and pairs every point."""
    runs = tmp_path / "runs"
    argv = [sys.executable, str(REPO / "experiments" / "make_curves.py"), "--quick"]
    argv += ["--data", str(tmp_path / "data"), "--runs", str(runs), "--synthetic", TINY]
    first = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "[19/19, " in first.stdout  # 5 trainings, 4 sweeps, 4 exit curves, 6 reports
    figures = runs / "figures"
    tables = {p.name: p.read_bytes() for p in sorted(figures.glob("*.md"))}
    assert set(tables) == {
        "checkpoints_dynamic_dkp.md", "checkpoints_dynamic_dkp_c2f.md",
        "checkpoints_dynamic_dkp_maxprob.md", "checkpoints_early_exit.md", "class_groups.md",
        "coverage.md", "curves.md", "exit_counts.md", "teacher_frame_choice.md", "verdicts.md",
    }  # fmt: skip
    assert {"curves.png", "exit_examples.png"} <= {p.name for p in figures.glob("*.png")}
    assert len(list(figures.glob("frames_*.png"))) == 2
    claimed = {line.split(" | ")[0][2:] for line in tables["verdicts.md"].decode().splitlines()}
    assert {claim.text for claim in CLAIMS} <= claimed

    again = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    counted = [
        line for line in again.stdout.splitlines() if " done in " in line and "/19, " in line
    ]
    assert len(counted) == 19
    assert all(line.endswith("time left not known yet]") for line in counted[:13])
    assert {p.name: p.read_bytes() for p in sorted(figures.glob("*.md"))} == tables

    # the same models on a second draw of validation and test videos: every point paired
    split = [sys.executable, str(REPO / "experiments" / "second_test_split.py")]
    split += ["--runs", str(runs), "--data", str(tmp_path / "split"), "--out", str(tmp_path / "b")]
    split += ["--videos-per-class", "2", "2", "--synthetic", SHORT]
    shift = subprocess.run(split, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert shift.returncode == 0, shift.stdout[-3000:] + shift.stderr[-3000:]
    pairs = (tmp_path / "b" / "figures" / "split_shift.md").read_text().splitlines()[2:]
    points = tables["curves.md"].decode().splitlines()[2:]
    assert len(pairs) == len(points) and f"all points: {len(points)} points move" in shift.stdout
