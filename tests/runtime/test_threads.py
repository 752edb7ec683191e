"""Torch threads on CPU leave DataLoader workers their cores (oversubscription stalls OpenMP)."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

import dkp.runtime.threads as cpu_threads
from dkp.runtime.threads import set_torch_threads, torch_threads


@pytest.mark.parametrize(
    ("cores", "workers", "processes", "expected"),
    [
        (2, 1, 1, 1),  # this machine with the embedded config: one core each
        (2, 0, 1, 2),  # no workers: every core
        (2, 4, 1, 1),  # more workers than cores: still one thread
        (16, 4, 2, 4),  # two DDP ranks on 16 cores, 4 workers each
        (16, 3, 1, 13),
    ],
)
def test_auto_leaves_the_workers_their_cores(cores, workers, processes, expected):
    assert torch_threads("auto", workers, processes, cores=cores) == expected


def test_counts_and_null_pass_through_and_others_name_the_field():
    assert torch_threads(3, workers=8, cores=2) == 3
    assert torch_threads(None, workers=1) is None
    for bad in (0, -1, "many", 1.5, True):
        with pytest.raises(ValueError, match=r"^torch_threads: "):
            torch_threads(bad, workers=1)


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("restore_threads")
def test_set_on_a_cpu_trainer_from_its_workers_and_devices(monkeypatch):
    monkeypatch.setattr(cpu_threads, "available_cores", lambda: 6)
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    set_torch_threads("auto", trainer, workers=2)
    assert torch.get_num_threads() == 4
    set_torch_threads(None, trainer, workers=2)  # null: left as it is
    assert torch.get_num_threads() == 4
