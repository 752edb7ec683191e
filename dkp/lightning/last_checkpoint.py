"""The run's one ``last.ckpt``: always the latest weights, so a killed run loses little."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.trainer.states import TrainerFn
from typing_extensions import override


def resume_hint(last: Path) -> str:
    """The command that resumes this run from ``last`` (its own overrides, and ckpt_path)."""
    from hydra.core.hydra_config import HydraConfig

    if not last.is_file():
        return "Interrupted before the first checkpoint: nothing to resume from."
    given = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    kept = [shlex.quote(o) for o in given if not o.startswith(("ckpt_path=", "hydra.run.dir="))]
    return "Interrupted. Resume with:\n  " + " ".join(
        ["dkp-train", *kept, f"ckpt_path={shlex.quote(str(last))}"]
    )


class LastCheckpoint(ModelCheckpoint):
    """Writes ``dirpath/last.ckpt`` every ``every_n_train_steps`` training steps (0: not
    mid-epoch), after every validation (or epoch end when there is none) and when training
    ends, so resuming from it (``ckpt_path=.../last.ckpt``) loses at most that many steps.

    One callback owns the file: two ``ModelCheckpoint(save_last=True)`` in one directory
    make Lightning write ``last-v1.ckpt`` beside it, and which of the two holds the newest
    weights then depends on the run's length."""

    def __init__(self, dirpath: str, every_n_train_steps: int = 0) -> None:
        if every_n_train_steps < 0:
            raise ValueError(
                f"callbacks.last_checkpoint.every_n_train_steps: {every_n_train_steps} is "
                "negative; use 0 to save only after validation and at the end"
            )
        super().__init__(
            dirpath=dirpath,
            save_top_k=0,
            save_last=True,
            every_n_train_steps=every_n_train_steps,
            enable_version_counter=False,
        )

    @property
    def path(self) -> Path:
        """The file (its name is fixed: no version counter)."""
        return Path(self.dirpath or ".") / f"{self.CHECKPOINT_NAME_LAST}{self.FILE_EXTENSION}"

    def _fitting(self, trainer: pl.Trainer) -> bool:
        return (
            not trainer.fast_dev_run
            and not trainer.sanity_checking
            and trainer.state.fn == TrainerFn.FITTING
        )

    def _save_last(self, trainer: pl.Trainer) -> None:
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._fitting(trainer) and self._should_save_on_train_epoch_end(trainer):
            self._save_last(trainer)

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._fitting(trainer) and not self._should_save_on_train_epoch_end(trainer):
            self._save_last(trainer)

    @override
    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """On Ctrl-C, say how to resume the run from its last checkpoint."""
        if isinstance(exception, KeyboardInterrupt) and trainer.is_global_zero:
            print(resume_hint(self.path), file=sys.stderr)

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._fitting(trainer) and self._last_global_step_saved != trainer.global_step:
            self._save_last(trainer)
