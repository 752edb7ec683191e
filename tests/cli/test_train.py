"""dkp-train from the command line: Ctrl-C says how to resume, and resuming continues in place."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
from typing_extensions import override

from tests.conftest import TINY_DATASET

REPO = Path(__file__).resolve().parents[2]
RUN = [
    "experiment=teacher",
    "trainer.max_epochs=2",
    "data.batch_size=4",
    "data.num_workers=0",
    "data.persistent_workers=false",
    "sampling.n_t=1",
    "test=false",
    "callbacks.last_checkpoint.every_n_train_steps=1",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "data.prepare=null",  # the tiny dataset is not the default one: use it as it is
    f"data.num_classes={TINY_DATASET.num_classes}",
]


class CtrlCOnce(pl.Callback):
    """Raises KeyboardInterrupt (as Ctrl-C does) before training step 3, once per ``marker``."""

    def __init__(self, marker: str) -> None:
        self.marker = Path(marker)

    @override
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == 3 and not self.marker.exists():
            self.marker.touch()
            raise KeyboardInterrupt


def dkp_train(args: list[str], root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "DKP_ROOT": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "dkp.cli.train", *args],
        capture_output=True, text=True, cwd=root, env=env, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_ctrl_c_prints_the_resume_command_and_resuming_continues_in_place(tiny_dataset, tmp_path):
    stop = ["+callbacks.stop._target_=tests.cli.test_train.CtrlCOnce",
            f"+callbacks.stop.marker={tmp_path}/stopped"]  # fmt: skip
    first = dkp_train([*RUN, f"data.root={tiny_dataset}", *stop], tmp_path)
    assert first.returncode == 1, first.stderr[-2000:]
    latest = tmp_path / "outputs" / "teacher" / "latest"
    assert latest.is_symlink() and not latest.readlink().is_absolute()
    run_dir = latest.resolve()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    hint = first.stderr.split("Interrupted. Resume with:\n", 1)[1].splitlines()[0].strip()
    command = shlex.split(hint)
    assert command[0] == "dkp-train" and command[1:-1] == [*RUN, f"data.root={tiny_dataset}", *stop]
    assert command[-1] == f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}"
    resumed = dkp_train(command[1:], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    runs = [p for p in (tmp_path / "outputs" / "teacher").glob("2*/*") if p.is_dir()]
    assert runs == [run_dir] and (run_dir / "results.json").is_file()  # the same directory
    assert latest.resolve() == run_dir
    assert "dirpath has changed" not in resumed.stderr
