"""What every dkp LightningModule shares: plain-dict config, metrics, logging, optimisation."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_warn
from torchmetrics import MetricCollection

from dkp.data.batch import Batch
from dkp.distributed import gather_lists
from dkp.evaluation.metrics import TopKHit, VideoMAP

RNG_KEY = "dkp_rng_state"


def plain(cfg: Any) -> Any:
    """A config as plain dicts/lists, so checkpoints stay loadable with ``weights_only``."""
    if isinstance(cfg, DictConfig) or OmegaConf.is_list(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def soft_target(target: torch.Tensor) -> torch.Tensor:
    """Multi-hot targets to distributions (a 2-label video gives 0.5 to each label)."""
    return target / target.sum(dim=1, keepdim=True).clamp_min(1.0)


def video_nll(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of video probabilities against (soft) multi-hot targets."""
    return -(soft_target(target) * probs.clamp_min(1e-8).log()).sum(dim=1).mean()


@dataclass
class FrameSeries:
    """Per-frame probabilities ``(B, N, C)`` with their times ``(B, N)`` and mask ``(B, N)``."""

    probs: torch.Tensor
    times: torch.Tensor
    mask: torch.Tensor | None


class VideoModule(pl.LightningModule, ABC):
    """Base: subclasses give ``forward(batch) -> video probabilities`` and ``loss``.

    Metrics are computed over the whole evaluation set (``val/mAP``, ``val/top1``,
    ``val/top5``, the same under ``test/``). Videos that failed to decode arrive in
    ``batch.failed``; they are counted and named at the end of each epoch and collected, from
    every process, in ``skipped_videos`` (stage -> video id -> reason) for the run's results.

    Checkpoints carry the random state, restored before the first step after a resume, and
    are refused (``FloatingPointError``) when a weight is not finite, so the last checkpoint
    on disk is always a good one.
    """

    kind = "base"

    def __init__(self, optimizer: dict | None = None, scheduler: dict | None = None) -> None:
        super().__init__()
        self.optimizer_cfg = plain(optimizer) or {"_target_": "torch.optim.AdamW", "lr": 1e-3}
        self.scheduler_cfg = plain(scheduler) or {"name": "cosine", "warmup_epochs": 0}
        metrics = MetricCollection({"mAP": VideoMAP(), "top1": TopKHit(1), "top5": TopKHit(5)})
        self.metrics = torch.nn.ModuleDict(
            {stage: metrics.clone(prefix=f"{stage}/") for stage in ("val", "test")}
        )
        self.skipped: dict[str, list[tuple[str, str]]] = {}
        self.skipped_videos: dict[str, dict[str, str]] = {}
        self._rng_to_restore: dict[str, Any] | None = None

    @property
    @abstractmethod
    def networks(self) -> tuple[str, ...]:
        """Which sampled streams (``student``, ``teacher``) the model reads from a batch."""

    @property
    @abstractmethod
    def input_sizes(self) -> dict[str, int | list[int]]:
        """Frame size each stream was trained at, so evaluation decodes at the same size."""

    @property
    def num_classes(self) -> int | None:
        """How many classes the model scores (None where the model does not say)."""
        return getattr(getattr(self, "net", None), "num_classes", None)

    @abstractmethod
    def video_probs(self, batch: Batch) -> torch.Tensor:
        """Class probabilities ``(B, C)`` per video."""

    @abstractmethod
    def frame_probs(self, batch: Batch) -> dict[str, FrameSeries]:
        """Per-frame class probabilities of each prediction source, for figures and predict."""

    @abstractmethod
    def training_loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Named loss terms; ``loss`` is the one optimised."""

    def setup(self, stage: str) -> None:
        """Record the class names and the sampling of the training data in the checkpoint,
        so that prediction can name classes and sample frames as in training."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        if datamodule is not None and stage == "fit":
            self.hparams["classes"] = list(datamodule.classes)
            self.hparams["sampling"] = datamodule.sampling.config

    # --- steps --------------------------------------------------------------------------
    def _note_failed(self, stage: str, batch: Batch) -> None:
        if batch.failed:
            self.skipped.setdefault(stage, []).extend(batch.failed)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor | None:
        self._note_failed("train", batch)
        if len(batch) == 0:
            return None
        losses = self.training_loss(batch)
        loss = losses["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss became {loss.item()} at step {self.global_step} "
                f"(videos {batch.video_ids}); the last good checkpoint is kept"
            )
        self.log_dict(
            {f"train/{k}": v.detach() for k, v in losses.items()},
            prog_bar=True,
            batch_size=len(batch),
        )
        return loss

    def _eval_step(self, stage: str, batch: Batch) -> dict[str, torch.Tensor] | None:
        self._note_failed(stage, batch)
        if len(batch) == 0:
            return None
        probs = self.video_probs(batch)
        self.metrics[stage].update(probs, batch.target)
        return {"probs": probs.detach()}

    def validation_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor] | None:
        """Updates the set-level metrics; returns the video probabilities for callbacks."""
        return self._eval_step("val", batch)

    def test_step(self, batch: Batch, batch_idx: int) -> dict[str, torch.Tensor] | None:
        """Updates the set-level metrics; returns the video probabilities for callbacks."""
        return self._eval_step("test", batch)

    def _eval_epoch_end(self, stage: str) -> None:
        self.log_dict(self.metrics[stage].compute(), prog_bar=stage == "val")
        self.metrics[stage].reset()
        self._report_skipped(stage)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def on_train_epoch_end(self) -> None:
        self._report_skipped("train")

    def _report_skipped(self, stage: str) -> None:
        failed = gather_lists(self.skipped.pop(stage, []))
        if self.trainer.sanity_checking:
            return
        self.skipped_videos.setdefault(stage, {}).update(failed)
        if failed:
            names = "; ".join(f"{vid}: {why}" for vid, why in failed[:10])
            more = f" (and {len(failed) - 10} more)" if len(failed) > 10 else ""
            rank_zero_warn(f"{stage}: skipped {len(failed)} undecodable videos: {names}{more}")

    # --- checkpoints: only finite weights, and the random state for an exact resume ---------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        bad = [k for k, v in checkpoint["state_dict"].items() if not torch.isfinite(v).all()]
        if bad:
            raise FloatingPointError(
                f"weights became non-finite at step {self.global_step} ({', '.join(bad[:3])}); "
                "not saving them, the last good checkpoint is kept"
            )
        state = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state()
        checkpoint[RNG_KEY] = state

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_to_restore = checkpoint.get(RNG_KEY)

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        # Restored here, not at load: Lightning draws from the RNG between loading and training.
        if self._rng_to_restore is not None:
            torch.set_rng_state(self._rng_to_restore["cpu"])
            if "cuda" in self._rng_to_restore and torch.cuda.is_available():
                torch.cuda.set_rng_state(self._rng_to_restore["cuda"])
            self._rng_to_restore = None

    # --- optimisation -------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = instantiate(self.optimizer_cfg, params=params)
        name = self.scheduler_cfg.get("name", "none")
        if name == "none":
            return optimizer
        if name != "cosine":
            raise ValueError(f"model.scheduler.name: {name!r} is not 'cosine' or 'none'")
        total = max(1, int(self.trainer.estimated_stepping_batches))
        epochs = max(1, self.trainer.max_epochs or 1)
        warmup = int(total * self.scheduler_cfg.get("warmup_epochs", 0) / epochs)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, total - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


class SingleStreamModule(VideoModule):
    """Base of the modules that read one sampled stream, ``role``: the teacher's or the
    student's frames at that network's input size."""

    ROLES = ("teacher", "student")

    @staticmethod
    def check_role(role: str) -> str:
        if role not in SingleStreamModule.ROLES:
            raise ValueError(f"model.role: {role!r} is not 'teacher' or 'student'")
        return role

    @property
    def role(self) -> str:
        return self.hparams.role

    @property
    def networks(self) -> tuple[str, ...]:
        return (self.role,)

    @property
    def input_sizes(self) -> dict[str, int | list[int]]:
        return {self.role: self.hparams.input_size}

    def stream(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The batch's frames and mask of this module's stream (a clear error when absent)."""
        frames = getattr(batch, f"{self.role}_frames")
        if frames is None:
            raise ValueError(
                f"the batch has no {self.role} frames: sampling.networks must include {self.role!r}"
            )
        return frames, getattr(batch, f"{self.role}_mask")
