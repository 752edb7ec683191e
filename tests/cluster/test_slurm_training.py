"""Training through a real SLURM cluster: DDP with one SLURM task per rank (Lightning reads the
ranks from SLURM) reports one process's metrics, and a job SLURM pre-empts and requeues
resumes from its last.ckpt to the result of an uninterrupted run."""

from __future__ import annotations

import json

import pytest
import torch

from dkp.runtime.jobs import run_job
from dkp.runtime.results import read_results
from dkp.tasks.evaluate import evaluate
from dkp.tasks.train import train
from tests.cluster.conftest import (
    dkp,
    final_state,
    num_classes,
    slurm,
    start,
    wait_queue_empty,
    wait_until,
)
from tests.conftest import compose_config
from tests.tasks.test_interruptions import RUN as INTERRUPTED_RUN

pytestmark = pytest.mark.cluster

RUN = [*INTERRUPTED_RUN, "torch_threads=1"]  # last.ckpt after each of 4 steps an epoch
REQUEUE_AT = 5  # a global step in the second epoch


def test_ddp_through_slurm_runs_one_task_per_rank_and_reports_one_process_metrics(
    slurm_env, odd_dataset, tmp_path
):
    sweep = tmp_path / "sweep"
    run = dkp(
        slurm_env,
        tmp_path,
        "dkp.cli.train",
        *("experiment=teacher", f"data.root={odd_dataset}"),
        f"data.num_classes={num_classes(odd_dataset)}",
        *("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"),
        *("trainer.precision=32-true", "trainer.sync_batchnorm=false"),
        *("trainer.max_epochs=1", "data.batch_size=4", "sampling.n_t=1"),
        "+callbacks.ranks._target_=tests.cluster.faults.RecordRanks",
        f"hydra.sweep.dir={sweep}",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    job = sweep / "0"
    ranks = [json.loads((job / f"rank{r}.json").read_text()) for r in (0, 1)]
    seen = [(r["global_rank"], r["world_size"], r["environment"], r["slurm_procid"]) for r in ranks]
    assert seen == [(0, 2, "SLURMEnvironment", "0"), (1, 2, "SLURMEnvironment", "1")]
    assert ranks[0]["pid"] != ranks[1]["pid"]  # two SLURM tasks, not one process
    results = read_results(job / "results.json")
    wait_queue_empty(slurm_env)
    assert results.slurm_job_id and final_state(slurm_env, results.slurm_job_id) == "COMPLETED"

    for split in ("val", "test"):
        overrides = [f"ckpt_path={results.last_checkpoint}", f"split={split}", "sampling.n_t=1"]
        overrides.append(f"data.num_classes={num_classes(odd_dataset)}")
        cfg = compose_config("eval", overrides, tmp_path / split, odd_dataset)
        alone = run_job(cfg, evaluate).metrics
        for metric in ("mAP", "top1", "top5"):
            key = f"{split}/{metric}"
            assert results.metrics[key] == pytest.approx(alone[key], abs=1e-6), key


def steps_by_attempt(log: str) -> dict[int, list[int]]:
    """Pace's ``steps.log``: the global steps each SLURM attempt (restart count) began."""
    attempts: dict[int, list[int]] = {}
    for line in log.splitlines():
        restarts, step, _ = line.split()
        attempts.setdefault(int(restarts), []).append(int(step))
    return attempts


def test_a_training_job_requeued_by_slurm_resumes_to_the_uninterrupted_result(
    slurm_env, odd_dataset, tmp_path
):
    classes = f"data.num_classes={num_classes(odd_dataset)}"
    whole = run_job(
        compose_config("train", [*RUN, classes], tmp_path / "whole", odd_dataset), train
    )

    sweep = tmp_path / "sweep"
    pace = ["+callbacks.pace._target_=tests.cluster.faults.Pace", "+callbacks.pace.seconds=1.0"]
    args = [*RUN, f"data.root={odd_dataset}", classes, *pace, f"hydra.sweep.dir={sweep}"]
    controller = start(slurm_env, tmp_path, "dkp.cli.train", *args)
    steps = sweep / "0" / "steps.log"
    try:
        wait_until(
            f"training to reach step {REQUEUE_AT}",
            lambda: steps.is_file() and f" {REQUEUE_AT} " in steps.read_text(),
            240,
        )
        job_id = steps.read_text().split()[2]
        slurm(slurm_env, "scontrol", "requeue", job_id)  # as pre-emption does: SIGTERM, requeue
        wait_until(
            "the job to be requeued",
            lambda: slurm(slurm_env, "squeue", "-h", "-j", job_id, "-o", "%T").strip() == "PENDING",
            60,
        )
        slurm(slurm_env, "scontrol", "update", f"JobId={job_id}", "StartTime=now")  # else 2 min
        controller.wait(timeout=300)
    finally:
        if controller.poll() is None:
            controller.kill()
    log = (tmp_path / "controller.log").read_text()
    assert controller.returncode == 0, log[-3000:]

    attempts = steps_by_attempt(steps.read_text())
    assert sorted(attempts) == [0, 1]  # it ran twice, as one SLURM job
    first, second = attempts[0], attempts[1]
    assert first == list(range(len(first))) and max(first) >= REQUEUE_AT
    assert REQUEUE_AT <= second[0] <= max(first) + 1  # resumed, not started again
    assert second == list(range(second[0], 8))
    assert "resumes from" in (sweep / "0" / "hydra_app.log").read_text()

    results = read_results(sweep / "0" / "results.json")
    assert results.slurm_job_id == job_id
    for key in ("val/mAP", "val/top1", "val/top5"):
        assert results.metrics[key] == pytest.approx(whole.metrics[key], abs=1e-6), key
    a = torch.load(whole.last_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    b = torch.load(results.last_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6, msg=key)
