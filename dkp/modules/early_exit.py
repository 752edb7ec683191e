"""Early-exit training and inference (Dynamic Inference, CVPRW 2020) as a LightningModule."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from hydra.utils import instantiate
from torch.nn import functional as F

from dkp.data.batch import Batch
from dkp.models.early_exit import EarlyExitNet, ExitOutput, UnitCosts, progressive_inference
from dkp.models.early_exit.stages import ResNetStages
from dkp.modules.base import FrameSeries, SingleStreamModule, plain, soft_target
from dkp.modules.checkpoint import CheckpointError, require_kind, substate
from dkp.modules.frame_classifier import FrameClassifierModule


class EarlyExitModule(SingleStreamModule):
    """An :class:`EarlyExitNet` on one stream (``role``, the teacher's by default).

    The stream must give every video exactly the net's ``num_frames`` frames (adaptive
    sampling with ``n_t`` = ``num_frames`` for the teacher stream). Training: every exit at
    once, loss = weighted mean over checkpoints of CE(logits_k, target), plus
    ``distill_weight`` * T^2 * KL(last exit at T || exit k at T) for the earlier exits
    (the last exit's distribution detached). Evaluation: progressive inference that stops a
    video at the first checkpoint whose maximum probability reaches ``thresholds[k]``
    (None: never early, i.e. the full model). ``net`` is the EarlyExitNet's config;
    ``backbone_ckpt`` optionally starts the backbone from a frame classifier checkpoint.
    """

    kind = "early_exit"

    def __init__(
        self,
        net: dict,
        role: str = "teacher",
        input_size: int | list[int] = 224,
        thresholds: float | list[float] | None = None,
        loss_weights: list[float] | None = None,
        distill_weight: float = 0.0,
        backbone_ckpt: str | None = None,
        distill_temperature: float = 4.0,
        optimizer: dict | None = None,
        scheduler: dict | None = None,
        classes: list[str] | None = None,
        sampling: dict | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler)
        self.check_role(role)
        self.save_hyperparameters(
            {
                "kind": self.kind,
                "net": plain(net),
                "role": role,
                "input_size": plain(input_size),
                "thresholds": plain(thresholds),
                "loss_weights": plain(loss_weights),
                "distill_weight": distill_weight,
                # The weights become this module's state: a reload needs no file.
                "backbone_ckpt": None,
                "backbone_source": backbone_ckpt,
                "distill_temperature": distill_temperature,
                "optimizer": self.optimizer_cfg,
                "scheduler": self.scheduler_cfg,
                "classes": plain(classes),
                "sampling": plain(sampling),
            }
        )
        self.net: EarlyExitNet = instantiate(self.hparams.net)
        if backbone_ckpt:
            self._load_backbone(backbone_ckpt)
        k = self.net.num_checkpoints
        weights = [1.0] * k if loss_weights is None else [float(w) for w in loss_weights]
        if len(weights) != k or sum(weights) <= 0:
            raise ValueError(f"model.loss_weights: need {k} weights with a positive sum")
        self.loss_weights = weights
        self.thresholds: float | Sequence[float] | None = self.hparams.thresholds
        self.unit_costs: UnitCosts | None = None  # set by evaluation to count GMACs per video

    def _load_backbone(self, path: str) -> None:
        """Start the backbone from a frame classifier's (e.g. the trained teacher's)."""
        hint = "Pass a checkpoint of `dkp-train experiment=teacher` (same backbone config)."
        ckpt = require_kind(path, FrameClassifierModule.kind, hint)
        body = self.net.body
        target = body.resnet if isinstance(body, ResNetStages) else body
        try:
            target.load_state_dict(substate(ckpt["state_dict"], "net.backbone."))
        except RuntimeError as err:
            raise CheckpointError(f"{path}: does not fit this backbone: {err}") from err

    def frames(self, batch: Batch) -> torch.Tensor:
        """The stream's frames; every video must have all ``num_frames`` of them."""
        frames, mask = self.stream(batch)
        if mask is not None and not bool(mask.all()):
            raise ValueError(
                "early exit needs the same frame count for every video: use adaptive sampling "
                f"with {self.net.grid.num_frames} {self.role} frames"
            )
        return frames

    def forward(self, batch: Batch) -> torch.Tensor:
        """Logits ``(B, K, C)`` at every checkpoint."""
        return self.net(self.frames(batch))

    def infer(self, batch: Batch, thresholds: float | Sequence[float] | None = None) -> ExitOutput:
        """Progressive inference with ``thresholds`` (default: the module's)."""
        limits = self.thresholds if thresholds is None else thresholds
        return progressive_inference(self.net, self.frames(batch), limits, self.unit_costs)

    def video_probs(self, batch: Batch) -> torch.Tensor:
        return self.infer(batch).probs

    def frame_probs(self, batch: Batch) -> dict[str, FrameSeries]:
        """Each checkpoint's video probabilities, drawn at the frames it has seen."""
        out = self.infer(batch, thresholds=float("inf"))
        times = getattr(batch, f"{self.role}_times")
        series = {}
        for k, c in enumerate(self.net.route):
            seen = [i for g in range(c.group + 1) for i in self.net.grid.group_frames(g)]
            seen.sort()
            probs = out.checkpoint_probs[:, k].unsqueeze(1).expand(-1, len(seen), -1)
            series[f"exit {k + 1}"] = FrameSeries(probs, times[:, seen], None)
        return series

    def _eval_step(self, stage: str, batch: Batch) -> dict[str, torch.Tensor] | None:
        self._note_failed(stage, batch)
        if len(batch) == 0:
            return None
        out = self.infer(batch)
        self.metrics[stage].update(out.probs, batch.target)
        # checkpoints numbered from 1, as in the tables and dkp.exits' predictions.csv
        return {"probs": out.probs.detach(), "exit": out.exit_index + 1}

    def training_loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits = self(batch)
        target = soft_target(batch.target)
        terms: dict[str, torch.Tensor] = {}
        total = sum(self.loss_weights)
        ce = [F.cross_entropy(logits[:, k], target) for k in range(logits.shape[1])]
        terms["exits"] = sum(w * v for w, v in zip(self.loss_weights, ce, strict=True)) / total
        terms["last"] = ce[-1].detach()
        loss = terms["exits"]
        if self.hparams.distill_weight and logits.shape[1] > 1:
            t = self.hparams.distill_temperature
            teacher = F.log_softmax(logits[:, -1].detach() / t, dim=-1)
            kl = [
                F.kl_div(
                    F.log_softmax(logits[:, k] / t, -1),
                    teacher,
                    log_target=True,
                    reduction="batchmean",
                )
                for k in range(logits.shape[1] - 1)
            ]
            terms["distill"] = (t * t) * torch.stack(kl).mean()
            loss = loss + self.hparams.distill_weight * terms["distill"]
        terms["loss"] = loss
        return terms
