"""Interruptions: a killed run resumes to the same result, a killed sweep finishes only what is
missing, results files are never half written, and a NaN stops training keeping the last good
checkpoint."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from typing_extensions import override

from dkp.lightning import load_module
from dkp.lightning.checkpoint import CheckpointError
from dkp.runtime.jobs import run_job
from dkp.runtime.results import read_results
from dkp.tasks.train import train
from tests.conftest import compose_config


class Killed(Exception):
    """Stands for the process being killed: Lightning saves nothing on the way out."""


class KillAt(pl.Callback):
    """Raises :class:`Killed` before training step ``step`` (0-based global step)."""

    def __init__(self, step: int) -> None:
        self.step = step

    @override
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise Killed(f"killed before step {self.step}")


class PoisonAt(pl.Callback):
    """Sets one weight to NaN before training step ``step``, so that step's loss is NaN."""

    def __init__(self, step: int) -> None:
        self.step = step

    @override
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).view(-1)[0] = float("nan")


class PoisonAfter(pl.Callback):
    """Sets one weight to inf after training step ``step``, before it is checkpointed."""

    def __init__(self, step: int) -> None:
        self.step = step

    @override
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).view(-1)[0] = float("inf")


HERE = "tests.tasks.test_interruptions"
REPO = Path(__file__).resolve().parents[2]
# 16 training videos in batches of 4: 4 steps an epoch; last.ckpt after every step.
RUN = [
    "experiment=teacher",
    "trainer.max_epochs=2",
    "data.batch_size=4",
    "sampling.n_t=1",
    "test=false",
    "callbacks.last_checkpoint.every_n_train_steps=1",
    "~callbacks.lr_monitor",
    "logger=none",
    "data.hflip=true",
]


def state(path: str | Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_a_run_killed_mid_epoch_resumes_to_the_same_result(tiny_dataset, tmp_path):
    whole = run_job(compose_config("train", RUN, tmp_path / "whole", tiny_dataset), train)

    out = tmp_path / "killed"
    kill = [f"+callbacks.kill._target_={HERE}.KillAt", "+callbacks.kill.step=5"]
    with pytest.raises(Killed):
        train(compose_config("train", RUN + kill, out, tiny_dataset))
    last = out / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=True)
    assert (ckpt["epoch"], ckpt["global_step"]) == (1, 5)  # one batch into the second epoch
    assert ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [
        {"epoch": 1, "batches": 1}
    ]

    resumed = run_job(
        compose_config("train", [*RUN, f"ckpt_path={last}"], out, tiny_dataset), train
    )
    for key in ("val/mAP", "val/top1", "val/top5"):
        assert resumed.metrics[key] == pytest.approx(whole.metrics[key], abs=1e-6), key
    a, b = state(whole.last_checkpoint), state(resumed.last_checkpoint)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=1e-6, msg=key)


def test_resuming_from_an_untrusted_or_foreign_checkpoint_is_refused(tiny_dataset, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    crafted = tmp_path / "crafted.ckpt"
    crafted.write_bytes(pickle.dumps({"state_dict": {}, "epoch": Exploit()}))
    cfg = compose_config("train", [*RUN, f"ckpt_path={crafted}"], tmp_path / "r", tiny_dataset)
    with pytest.raises(CheckpointError, match="crafted.ckpt.*weights_only=True"):
        train(cfg)
    assert not marker.exists()

    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"kind": "dkp"}}, foreign)
    cfg = compose_config("train", [*RUN, f"ckpt_path={foreign}"], tmp_path / "f", tiny_dataset)
    with pytest.raises(CheckpointError, match="'dkp' checkpoint; expected a 'frame_classifier'"):
        train(cfg)


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tiny_dataset, tmp_path):
    poison = [f"+callbacks.poison._target_={HERE}.PoisonAt", "+callbacks.poison.step=2"]
    cfg = compose_config("train", RUN + poison, tmp_path, tiny_dataset)
    with pytest.raises(FloatingPointError, match="training loss became nan at step 2"):
        train(cfg)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2
    module = load_module(last)
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_non_finite_weights_are_never_saved(tiny_dataset, tmp_path):
    poison = [f"+callbacks.poison._target_={HERE}.PoisonAfter", "+callbacks.poison.step=3"]
    cfg = compose_config("train", RUN + poison, tmp_path / "inf", tiny_dataset)
    with pytest.raises(FloatingPointError, match="weights became non-finite at step 3"):
        train(cfg)
    last = tmp_path / "inf" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2
    assert all(torch.isfinite(p).all() for p in load_module(last).parameters())


def test_a_diverging_run_stops_with_finite_checkpoints(tiny_dataset, tmp_path):
    cfg = compose_config("train", [*RUN, "model.optimizer.lr=1e30"], tmp_path, tiny_dataset)
    with pytest.raises(FloatingPointError, match="became non-finite|loss became"):
        train(cfg)
    for path in (tmp_path / "checkpoints").glob("*.ckpt"):
        assert all(torch.isfinite(v).all() for v in state(path).values()), path


# --- sweeps and results files ---------------------------------------------------------------
def sweep(ckpt: str, dataset: Path, out: Path, *extra: str, module: str = "dkp.cli.evaluate"):
    """``dkp-eval -m`` (or ``module``) over the tiny dataset into sweep dir ``out``."""
    cmd = [
        *(sys.executable, "-m", module, "-m", f"ckpt_path={ckpt}", f"data.root={dataset}"),
        *("data.prepare=null", "data.num_classes=8", "data.num_workers=0"),
        "data.persistent_workers=false",
        *("trainer.enable_progress_bar=false", f"hydra.sweep.dir={out}", *extra),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # `tests` importable from another cwd
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=out.parent, env=env)


@pytest.fixture(scope="module")
def teacher_ckpt(tiny_dataset, tmp_path_factory) -> str:
    steps = ["trainer.max_epochs=1", "trainer.limit_train_batches=1", "data.batch_size=4"]
    cfg = compose_config(
        "train",
        ["experiment=teacher", *steps, "sampling.n_t=1", "test=false"],
        tmp_path_factory.mktemp("teacher"),
        tiny_dataset,
    )
    return run_job(cfg, train).last_checkpoint


def test_an_interrupted_sweep_run_again_finishes_only_the_missing_jobs(
    teacher_ckpt, tiny_dataset, tmp_path
):
    out = tmp_path / "sweep"
    points = "sampling.n_t=1,3,2"
    first = sweep(teacher_ckpt, tiny_dataset, out, points, module="tests.tasks.interrupting_eval")
    assert first.returncode != 0  # Ctrl-C in job 1 ends the sweep
    assert (out / "0" / "results.json").is_file()
    assert not (out / "1" / "results.json").exists() and not (out / "1" / "failed.json").exists()
    assert not (out / "2").exists()
    stamp = (out / "0" / "results.json").stat().st_mtime_ns

    again = sweep(teacher_ckpt, tiny_dataset, out, points)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (again.stdout + again.stderr).count("already done") == 1
    assert (out / "0" / "results.json").stat().st_mtime_ns == stamp
    done = [read_results(out / str(i) / "results.json") for i in range(3)]
    assert [r.cost.frames_teacher for r in done] == [1.0, 3.0, 2.0]
