"""The deterministic mode: the same config and seed give the same weights and metrics."""

from __future__ import annotations

import torch

from dkp.runtime.jobs import run_job
from dkp.tasks.train import train
from tests.conftest import compose_config

DETERMINISTIC = ["trainer.deterministic=true", "torch_threads=1", "seed=3"]
STEPS = [
    "experiment=teacher",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "data.batch_size=4",
    "sampling.n_t=2",
    "data.hflip=true",
    "logger=none",
]


def test_two_runs_give_identical_weights_and_metrics(tiny_dataset, tmp_path):
    runs = [
        run_job(
            compose_config("train", [*STEPS, *DETERMINISTIC], tmp_path / n, tiny_dataset), train
        )
        for n in ("a", "b")
    ]
    assert runs[0].metrics == runs[1].metrics
    a, b = (torch.load(r.last_checkpoint, weights_only=True)["state_dict"] for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = compose_config("train", [*STEPS, "trainer.deterministic=true", "torch_threads=1",
                                     "seed=4"], tmp_path / "c", tiny_dataset)  # fmt: skip
    c = torch.load(run_job(other, train).last_checkpoint, weights_only=True)["state_dict"]
    assert not all(torch.equal(a[k], c[k]) for k in a)  # another seed: other weights
