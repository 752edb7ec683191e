"""Hydra and Lightning's DDP launcher together: the other ranks join this job's run directory.

With ``strategy=ddp``, Lightning starts ranks 1..N-1 of a node by running the command line
again with ``hydra.run.dir=<HydraConfig run.dir>``. In a multirun that command line is the
whole sweep (``-m`` and every ``a=1,2``), so each rank would start a sweep of its own, and
``run.dir`` is the unused single-run pattern, so ranks would write to fresh directories
(Lightning-AI/pytorch-lightning#11300, facebookresearch/hydra#2070). While a job runs, we
make the command line this job's own overrides and ``run.dir`` its output directory: every
rank then runs the same job in the same directory, in single-run mode. After the job the
process group and the launcher's environment variables are cleared, so the next job of the
sweep (same process) starts its own ranks. ``ddp_spawn`` and
SLURM (one task per rank, started by srun) do not re-run the command and need none of this.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, read_write

# What Lightning's launcher sets in this process's environment for the ranks it starts.
LAUNCH_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextmanager
def ranks_join_this_job() -> Iterator[None]:
    """Within the block, Lightning's DDP launcher re-runs this job, in this job's directory."""
    if not HydraConfig.initialized():
        yield
        return
    hydra_cfg = HydraConfig.get()
    argv, env = sys.argv, {name: os.environ.get(name) for name in LAUNCH_ENV}
    output_dir = OmegaConf.select(hydra_cfg, "runtime.output_dir", default=None)
    if output_dir is not None:  # None: a config composed without running (tests, notebooks)
        with read_write(hydra_cfg):
            hydra_cfg.run.dir = output_dir
    if hydra_cfg.mode == RunMode.MULTIRUN:
        sys.argv = [argv[0], *hydra_cfg.overrides.task]
    try:
        yield
    finally:
        sys.argv = argv
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for name, value in env.items():  # else the next job thinks its ranks already exist
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
