"""What the cluster tests do inside SLURM jobs: fail, crash hard or hang (until ``scancel``) at
chosen sweep points, slow training down so it can be pre-empted mid-epoch, record Lightning's ranks.

``python -m tests.cluster.faults -m ...`` is ``dkp-eval`` whose job with ``sampling.n_t=N``
does what ``DKP_TEST_FAULTS`` (e.g. ``2:crash,3:hang,4:error``) says; the variable reaches the jobs
through sbatch's environment, and a sweep run again without it has the same configs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig
from typing_extensions import override

from dkp.runtime.hydra_app import run_hydra_app
from dkp.runtime.results import Results
from dkp.tasks.evaluate import evaluate as dkp_evaluate

FAULTS_ENV = "DKP_TEST_FAULTS"
HANGING = "hanging"  # written in the run directory by a job that hangs: its SLURM job id
HANG_S = 600


def planned_fault(n_t: int) -> str | None:
    """The fault ``DKP_TEST_FAULTS`` plans for the sweep point with ``sampling.n_t=n_t``."""
    spec = os.environ.get(FAULTS_ENV, "")
    plan = dict(item.split(":", 1) for item in spec.split(",") if item)
    return plan.get(str(n_t))


def evaluate(cfg: DictConfig) -> Results:
    """``dkp-eval``'s task, or the fault planned for this point."""
    fault = planned_fault(cfg.sampling.n_t)
    if fault == "error":
        raise RuntimeError("a planned error")
    if fault == "crash":
        os._exit(3)  # no exception, no cleanup: as a segfault or the OOM killer would end it
    if fault == "hang":
        (Path(cfg.paths.output_dir) / HANGING).write_text(os.environ.get("SLURM_JOB_ID", ""))
        time.sleep(HANG_S)
    return dkp_evaluate(cfg)


class Pace(pl.Callback):
    """Sleeps ``seconds`` before each training step and appends ``<SLURM restart count>
    <global step>`` to ``steps.log`` in the run directory: which attempt ran which step."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    @override
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
        with (Path(trainer.default_root_dir) / "steps.log").open("a") as log:
            log.write(f"{restarts} {trainer.global_step} {os.environ.get('SLURM_JOB_ID')}\n")
        time.sleep(self.seconds)


class RecordRanks(pl.Callback):
    """Writes ``rank<N>.json`` (rank, world size, cluster environment) in the run directory."""

    @override
    def on_fit_start(self, trainer, pl_module) -> None:
        environment = trainer.strategy.cluster_environment
        record = {
            "global_rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "environment": type(environment).__name__ if environment else None,
            "slurm_procid": os.environ.get("SLURM_PROCID"),
            "pid": os.getpid(),
        }
        path = Path(trainer.default_root_dir) / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps(record))


if __name__ == "__main__":
    sys.exit(run_hydra_app("eval", "tests.cluster.faults:evaluate"))
