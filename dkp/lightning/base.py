"""What every dkp LightningModule shares: plain-dict config, metrics, logging, optimisation."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.utilities import rank_zero_warn
from torchmetrics import MetricCollection
from typing_extensions import override

from dkp.data.batch import Batch, stack_views
from dkp.data.sampling.frame_times import ClipSampling, build_sampling, sampling_with
from dkp.evaluation.cost import CostModel
from dkp.evaluation.metrics import TopKHit, VideoMAP
from dkp.runtime.distributed import gather_lists
from dkp.runtime.results import CostSummary

RNG_KEY = "dkp_rng_state"


def plain(cfg: Any) -> Any:
    """A config as plain dicts/lists, so checkpoints stay loadable with ``weights_only``."""
    if isinstance(cfg, DictConfig) or OmegaConf.is_list(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def without_weight_files(cfg: Any) -> Any:
    """A network config with every ``weights`` file set to None (at any depth): the
    weights a file gave become the module's own state, so its checkpoint needs no file."""
    if isinstance(cfg, dict):
        return {
            k: None if k == "weights" and isinstance(v, str) else without_weight_files(v)
            for k, v in cfg.items()
        }
    if isinstance(cfg, list):
        return [without_weight_files(v) for v in cfg]
    return cfg


def soft_target(target: torch.Tensor) -> torch.Tensor:
    """Multi-hot targets to distributions (a 2-label video gives 0.5 to each label)."""
    return target / target.sum(dim=1, keepdim=True).clamp_min(1.0)


def video_nll(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of video probabilities against (soft) multi-hot targets."""
    return -(soft_target(target) * probs.clamp_min(1e-8).log()).sum(dim=1).mean()


@dataclass(frozen=True)
class VideoCost:
    """What one evaluated video cost: GMACs and the student and teacher frames it ran."""

    video_id: str
    gflops: float
    frames_student: int
    frames_teacher: int


@dataclass
class FrameSeries:
    """Per-frame probabilities ``(B, N, C)`` with their times ``(B, N)`` and mask ``(B, N)``."""

    probs: torch.Tensor
    times: torch.Tensor
    mask: torch.Tensor | None


class VideoModule(pl.LightningModule, ABC):
    """Base: subclasses give ``forward(batch) -> video probabilities`` and ``loss``.

    Metrics are computed over the whole evaluation set (``val/mAP``, ``val/top1``,
    ``val/top5``, the same under ``test/``). Each evaluated video's cost, counted for what
    ran on it (:meth:`video_costs`), is gathered from every process and logged with them as
    ``val/gflops`` (mean GMACs per video), ``val/gflops_std``, ... (:class:`CostSummary`'s
    fields) and ``val/num_videos``. Videos that failed to decode arrive in
    ``batch.failed``; they are counted and named at the end of each epoch and collected, from
    every process, in ``skipped_videos`` (stage -> video id -> reason) for the run's results.

    Checkpoints carry the random state, restored before the first step after a resume, and
    are refused (``FloatingPointError``) when a weight is not finite, so the last checkpoint
    on disk is always a good one.
    """

    kind = "base"

    def __init__(
        self,
        optimizer: dict | None = None,
        scheduler: dict | None = None,
        classes: list[str] | None = None,
        sampling: dict | None = None,
    ) -> None:
        super().__init__()
        self.optimizer_cfg = plain(optimizer) or {"_target_": "torch.optim.AdamW", "lr": 1e-3}
        self.scheduler_cfg = plain(scheduler) or {"name": "cosine", "warmup_epochs": 0}
        self._recorded = {"classes": plain(classes), "sampling": plain(sampling)}
        metrics = MetricCollection({"mAP": VideoMAP(), "top1": TopKHit(1), "top5": TopKHit(5)})
        self.metrics = torch.nn.ModuleDict(
            {stage: metrics.clone(prefix=f"{stage}/") for stage in ("val", "test")}
        )
        self.skipped: dict[str, list[tuple[str, str]]] = {}
        self.skipped_videos: dict[str, dict[str, str]] = {}
        self.spent: dict[str, list[VideoCost]] = {}  # this epoch's, this process's
        self._rng_to_restore: dict[str, Any] | None = None
        self._cost_model: CostModel | None = None

    def save_config(self, **own: Any) -> None:
        """Keep the module's config in its checkpoint, as plain containers (so that
        ``load_from_checkpoint`` works with ``weights_only``): ``own`` arguments and what every
        module records (kind, optimiser, schedule, class names, training sampling)."""
        self.save_hyperparameters(
            {
                "kind": self.kind,
                **{name: plain(value) for name, value in own.items()},
                "optimizer": self.optimizer_cfg,
                "scheduler": self.scheduler_cfg,
                **self._recorded,
            }
        )

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

    @abstractmethod
    def build_cost_model(self) -> CostModel:
        """GMACs per video as a function of its frame counts (counted once, then cached)."""

    def cost_model(self) -> CostModel:
        """This module's :class:`CostModel` (see :meth:`build_cost_model`)."""
        if self._cost_model is None:
            self._cost_model = self.build_cost_model()
        return self._cost_model

    def video_costs(self, batch: Batch) -> list[VideoCost]:
        """What each video of ``batch`` costs when the whole model runs on its real frames."""
        model = self.cost_model()
        n_s, n_t = frame_counts(batch)
        return [
            VideoCost(vid, model.video(s, t), s, t)
            for vid, s, t in zip(batch.video_ids, n_s, n_t, strict=True)
        ]

    def class_names(self) -> list[str]:
        """The class names recorded at training (``class_<i>`` where none were)."""
        names = self.hparams.get("classes")
        return list(names) if names else [f"class_{i}" for i in range(self.num_classes or 0)]

    def sampling(self, overrides: dict[str, Any] | None = None) -> ClipSampling:
        """The sampling this module was trained with, with ``overrides`` applied."""
        return build_sampling(**self.sampling_config(overrides))

    def sampling_config(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """:meth:`sampling`'s :func:`build_sampling` arguments (see :func:`sampling_with`)."""
        return sampling_with(self.hparams.get("sampling"), overrides, self.networks)

    @override
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

    @override
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

    def _eval_step(self, stage: str, batch: Batch) -> dict[str, Any] | None:
        self._note_failed(stage, batch)
        if len(batch) == 0:
            return None
        probs, costs, exits = self.score(batch)
        self.metrics[stage].update(probs, batch.target)
        self.spent.setdefault(stage, []).extend(costs)
        return {"probs": probs.detach(), "costs": costs, "exit": exits}

    def score(self, batch: Batch) -> tuple[torch.Tensor, list[VideoCost], torch.Tensor | None]:
        """Video probabilities, what each video cost, and (for a model that stops early) the
        1-based checkpoint each stopped at. A batch of several views per video (multi-view
        testing, :mod:`dkp.data.views`) is scored in one pass over all views: probabilities
        averaged over a video's views, its cost the sum of theirs, its checkpoint the latest
        any view reached."""
        if batch.num_views == 1:
            return self.score_view(batch)
        return merge_views(*self.score_view(stack_views(batch)), batch.num_views)

    def score_view(self, batch: Batch) -> tuple[torch.Tensor, list[VideoCost], torch.Tensor | None]:
        """:meth:`score` of one view per video: what a model kind refines."""
        return self.video_probs(batch), self.video_costs(batch), None

    @override
    def validation_step(self, batch: Batch, batch_idx: int) -> dict[str, Any] | None:
        """Updates the set-level metrics; returns probabilities, costs and exits for callbacks."""
        return self._eval_step("val", batch)

    @override
    def test_step(self, batch: Batch, batch_idx: int) -> dict[str, Any] | None:
        """Updates the set-level metrics; returns probabilities, costs and exits for callbacks."""
        return self._eval_step("test", batch)

    def _eval_epoch_end(self, stage: str) -> None:
        self.log_dict(self.metrics[stage].compute(), prog_bar=stage == "val")
        self.metrics[stage].reset()
        costs = gather_lists(self.spent.pop(stage, []))
        if costs:  # float64, one value per epoch: logged exactly as computed
            summary = CostSummary.of(
                [c.gflops for c in costs], [(c.frames_student, c.frames_teacher) for c in costs]
            )
            logged = {**asdict(summary), "num_videos": len(costs)}
            for name, value in logged.items():
                value = torch.tensor(value, dtype=torch.float64)
                self.log(f"{stage}/{name}", value, batch_size=1, sync_dist=False)
        self._report_skipped(stage)

    @override
    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    @override
    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    @override
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
    @override
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

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._rng_to_restore = checkpoint.get(RNG_KEY)

    @override
    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        # Restored here, not at load: Lightning draws from the RNG between loading and training.
        if self._rng_to_restore is not None:
            torch.set_rng_state(self._rng_to_restore["cpu"])
            if "cuda" in self._rng_to_restore and torch.cuda.is_available():
                torch.cuda.set_rng_state(self._rng_to_restore["cuda"])
            self._rng_to_restore = None

    # --- optimisation -------------------------------------------------------------------
    @override
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


def merge_views(
    probs: torch.Tensor, costs: list[VideoCost], exits: torch.Tensor | None, views: int
) -> tuple[torch.Tensor, list[VideoCost], torch.Tensor | None]:
    """Scores of ``views`` views per video, stacked view by view (:func:`stack_views`), to
    one row per video: mean probabilities, summed costs and frames, the latest exit."""
    videos = len(costs) // views
    merged = [
        VideoCost(
            costs[i].video_id,
            sum(c.gflops for c in costs[i::videos]),
            sum(c.frames_student for c in costs[i::videos]),
            sum(c.frames_teacher for c in costs[i::videos]),
        )
        for i in range(videos)
    ]
    mean = probs.view(views, videos, *probs.shape[1:]).mean(dim=0)
    latest = None if exits is None else exits.view(views, videos).max(dim=0).values
    return mean, merged, latest


def frame_counts(batch: Batch) -> tuple[list[int], list[int]]:
    """Real student and teacher frames of each video of ``batch`` (0 for an absent stream)."""

    def count(mask: torch.Tensor | None) -> list[int]:
        return [0] * len(batch) if mask is None else [int(n) for n in mask.sum(1).tolist()]

    return count(batch.student_mask), count(batch.teacher_mask)
