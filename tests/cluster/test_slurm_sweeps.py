"""Sweeps through a real SLURM cluster (hydra/launcher=slurm): one SLURM job per point, each
recorded in its results, drawn by dkp-curves; a cancelled or crashed job ends the sweep in
bounded time with failed.json, and the sweep run again runs only what is missing."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dkp.runtime.results import read_failure, read_results
from tests.cluster.conftest import (
    dkp,
    final_state,
    num_classes,
    start,
    wait_queue_empty,
    wait_until,
)
from tests.cluster.faults import FAULTS_ENV, HANGING

pytestmark = pytest.mark.cluster


def eval_args(ckpt: str, data: Path, sweep: Path, points: str) -> list[str]:
    return [
        *(f"ckpt_path={ckpt}", f"data.root={data}", f"data.num_classes={num_classes(data)}"),
        *("split=val", f"sampling.n_t={points}", f"hydra.sweep.dir={sweep}"),
    ]


def test_a_sweep_runs_each_point_as_a_slurm_job_and_dkp_curves_draws_them(
    slurm_env, teacher_ckpt, odd_dataset, tmp_path
):
    sweep = tmp_path / "sweep"
    run = dkp(
        slurm_env,
        tmp_path,
        "dkp.cli.evaluate",
        *eval_args(teacher_ckpt, odd_dataset, sweep, "1,2"),
    )
    assert run.returncode == 0, run.stderr[-3000:]

    results = [read_results(sweep / str(job) / "results.json") for job in (0, 1)]
    assert [r.cost.frames_teacher for r in results] == [1.0, 2.0]
    ids = [r.slurm_job_id for r in results]
    assert all(ids) and len(set(ids)) == 2, ids  # two SLURM jobs, each named in its results
    wait_queue_empty(slurm_env)  # the controller has the results before SLURM ends the jobs
    assert [final_state(slurm_env, job_id) for job_id in ids] == ["COMPLETED", "COMPLETED"]

    figures = tmp_path / "figures"
    curves = subprocess.run(
        [
            sys.executable,
            "-m",
            "dkp.cli.curves",
            str(sweep),
            "--split",
            "val",
            "--out",
            str(figures),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=slurm_env,
    )
    assert curves.returncode == 0, curves.stderr[-2000:]
    assert "2 point(s) in 1 series" in curves.stdout
    assert (figures / "curves.png").is_file()
    assert len((figures / "curves.csv").read_text().strip().splitlines()) == 3  # header + 2


FAULTS = [
    # fault, SLURM's final state, what failed.json says, what the sweep command says
    ("crash", "FAILED", "did not finish", "UncompletedJobError"),
    ("hang", "CANCELLED", "did not finish", "UncompletedJobError"),
    ("error", "COMPLETED", "RuntimeError: a planned error", "1 job(s) failed"),
]


@pytest.mark.parametrize(("fault", "state", "error", "said"), FAULTS, ids=[f[0] for f in FAULTS])
def test_a_failed_crashed_or_cancelled_job_ends_the_sweep_and_a_rerun_runs_only_it(
    slurm_env, teacher_ckpt, odd_dataset, tmp_path, fault, state, error, said
):
    """Job 1 fails (an exception), or dies without running any more of our code (os._exit, or
    scancel while it hangs): the sweep still ends and exits 1 saying so, with failed.json for
    job 1; the same sweep again runs only job 1."""
    sweep = tmp_path / "sweep"
    args = eval_args(teacher_ckpt, odd_dataset, sweep, "1,2")
    began = time.monotonic()
    controller = start(
        {**slurm_env, FAULTS_ENV: f"2:{fault}"}, tmp_path, "tests.cluster.faults", *args
    )
    try:
        if fault == "hang":
            marker = sweep / "1" / HANGING
            job = wait_until("job 1 to hang", lambda: marker.is_file() and marker.read_text(), 240)
            subprocess.run(["scancel", job], check=True, timeout=30, env=slurm_env)
        controller.wait(timeout=240)
    finally:
        if controller.poll() is None:
            controller.kill()
    took = time.monotonic() - began
    log = (tmp_path / "controller.log").read_text()
    assert controller.returncode == 1 and said in log, log[-3000:]
    assert took < 240
    wait_queue_empty(slurm_env)

    done = read_results(sweep / "0" / "results.json")
    assert not (sweep / "0" / "failed.json").exists()
    assert not (sweep / "1" / "results.json").exists()
    failure = read_failure(sweep / "1" / "failed.json")
    assert error in failure.error and "sampling.n_t=2" in failure.overrides
    job_id = json.loads((sweep / "1" / "job.json").read_text())["slurm"]
    assert final_state(slurm_env, job_id).startswith(state)

    stamp = (sweep / "0" / "results.json").stat().st_mtime_ns
    again = dkp(slurm_env, tmp_path, "tests.cluster.faults", *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (sweep / "0" / "results.json").stat().st_mtime_ns == stamp  # never repeated
    assert (sweep / "0" / "hydra_app.log").read_text().count("already done, skipping") == 1
    assert not (sweep / "1" / "failed.json").exists()
    redone = read_results(sweep / "1" / "results.json")
    assert redone.cost.frames_teacher == 2.0 and redone.slurm_job_id not in (None, job_id)
    assert read_results(sweep / "0" / "results.json").slurm_job_id == done.slurm_job_id
