"""Hydra multirun sweeps end to end: results per job, reruns skip, failures don't stop a sweep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dkp.runtime.jobs import run_job
from dkp.runtime.results import read_results
from dkp.tasks.train import train
from tests.conftest import compose_config


@pytest.fixture(scope="module")
def teacher_ckpt(tiny_dataset, tmp_path_factory) -> str:
    cfg = compose_config(
        "train",
        [
            "experiment=teacher",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=1",
            "data.batch_size=4",
            "sampling.n_t=1",
            "test=false",
        ],
        tmp_path_factory.mktemp("teacher"),
        tiny_dataset,
    )
    return run_job(cfg, train).last_checkpoint


def sweep(ckpt: str, dataset: Path, sweep_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "dkp.cli.evaluate",
        "-m",
        f"ckpt_path={ckpt}",
        f"data.root={dataset}",
        "data.prepare=null",
        "data.num_classes=8",
        "data.num_workers=0",
        "data.persistent_workers=false",
        "trainer.enable_progress_bar=false",
        f"hydra.sweep.dir={sweep_dir}",
        "series=Teacher",
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_two_job_sweep_then_rerun_does_no_work(teacher_ckpt, tiny_dataset, tmp_path):
    out = tmp_path / "sweep"
    first = sweep(teacher_ckpt, tiny_dataset, out, "sampling.n_t=1,3")
    assert first.returncode == 0, first.stderr[-2000:]
    results = [read_results(out / str(i) / "results.json") for i in (0, 1)]
    assert [r.cost.frames_teacher for r in results] == [1.0, 3.0]
    assert results[1].cost.gflops == pytest.approx(3 * results[0].cost.gflops)
    stamps = [(out / str(i) / "results.json").stat().st_mtime_ns for i in (0, 1)]

    again = sweep(teacher_ckpt, tiny_dataset, out, "sampling.n_t=1,3")
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout.count("already done") + again.stderr.count("already done") == 2
    assert [(out / str(i) / "results.json").stat().st_mtime_ns for i in (0, 1)] == stamps

    from dkp.reporting.points import collect_points

    points, problems = collect_points([out])
    assert [(p.series, p.frames_teacher) for p in points] == [("Teacher", 1.0), ("Teacher", 3.0)]
    assert problems == []


def test_a_failing_job_does_not_stop_the_sweep(teacher_ckpt, tiny_dataset, tmp_path):
    out = tmp_path / "sweep"
    run = sweep(teacher_ckpt, tiny_dataset, out, "sampling.n_t=0,2")
    assert run.returncode == 1, run.stderr[-2000:]  # the sweep finished, one job failed
    assert "dkp-eval: 1 job(s) failed" in run.stderr
    failed = json.loads((out / "0" / "failed.json").read_text())
    assert "sampling.n_t" in failed["error"] and "sampling.n_t=0" in failed["overrides"]
    assert json.loads((out / "1" / "results.json").read_text())["cost"]["frames_teacher"] == 2.0
