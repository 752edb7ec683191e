"""Torch's CPU threads next to DataLoader workers.

Torch starts one OpenMP thread per core. Training or evaluating on the CPU while DataLoader
workers decode on the same cores oversubscribes them, and an OpenMP region then waits for
its descheduled threads: on 2 cores with one worker, whole epochs ran 5-15x slower. Leaving
the workers their cores avoids it.
"""

from __future__ import annotations

import logging
import os

import pytorch_lightning as pl
import torch
from pytorch_lightning.accelerators import CPUAccelerator

log = logging.getLogger(__name__)


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, which schedulers set), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def torch_threads(
    setting: int | str | None, workers: int, processes: int = 1, cores: int | None = None
) -> int | None:
    """Threads for each of ``processes`` torch processes per machine that run on the CPU,
    each next to ``workers`` DataLoader workers; None leaves torch's default.

    ``setting``: ``"auto"`` (the cores left after the workers, at least 1), a count, or None.
    """
    if setting is None:
        return None
    if setting == "auto":
        cores = available_cores() if cores is None else cores
        return max(1, cores // max(1, processes) - workers)
    if isinstance(setting, int) and not isinstance(setting, bool) and setting >= 1:
        return setting
    raise ValueError(f"torch_threads: {setting!r} is not 'auto', null or a count >= 1")


def set_torch_threads(setting: int | str | None, trainer: pl.Trainer, workers: int) -> None:
    """Apply :func:`torch_threads` to this process when ``trainer`` runs the model on the CPU
    (one process per device of this machine); a GPU run keeps torch's default."""
    threads = torch_threads(setting, workers, trainer.num_devices)
    on_cpu = isinstance(trainer.accelerator, CPUAccelerator)
    if on_cpu and threads is not None and threads != torch.get_num_threads():
        log.info("torch threads: %d (next to %d DataLoader workers)", threads, workers)
        torch.set_num_threads(threads)
