"""Early-exit training and inference (Dynamic Inference, CVPRW 2020) as a LightningModule."""

from __future__ import annotations

import functools

import numpy as np
import torch
from hydra.utils import instantiate
from torch.nn import functional as F
from typing_extensions import override

from dkp.data.batch import Batch
from dkp.evaluation.cost import CostModel
from dkp.evaluation.early_exit.cost import RouteCosts, route_costs
from dkp.lightning.base import (
    FrameSeries,
    SingleStreamModule,
    VideoCost,
    plain,
    soft_target,
    without_weight_files,
)
from dkp.lightning.checkpoint import CheckpointError, require_kind, substate
from dkp.lightning.exiting import CheckpointScores
from dkp.lightning.frame_classifier import FrameClassifierModule
from dkp.models.early_exit import EarlyExitNet, ExitOutput, ExitPolicy, progressive_inference
from dkp.models.early_exit.stages import ResNetStages


class EarlyExitModule(SingleStreamModule):
    """An :class:`EarlyExitNet` on one stream (``role``, the teacher's by default).

    The stream must give every video exactly the net's ``num_frames`` frames (adaptive
    sampling with ``n_t`` = ``num_frames`` for the teacher stream). Training: every exit at
    once, loss = weighted mean over checkpoints of CE(logits_k, target), plus
    ``distill_weight`` * T^2 * KL(last exit at T || exit k at T) for the earlier exits
    (the last exit's distribution detached). Evaluation: progressive inference that stops a
    video at the first checkpoint whose maximum probability reaches ``thresholds[k]``
    (None: never early, i.e. the full model); each video's GMACs are what the route cost up to
    its exit. It is :class:`~dkp.lightning.exiting.EarlyExiting`. ``net`` is the config of the
    :class:`~dkp.models.early_exit.network.EarlyExitNet`;
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
        super().__init__(optimizer, scheduler, classes, sampling)
        self.check_role(role)
        self.save_config(
            net=without_weight_files(plain(net)),
            role=role,
            input_size=input_size,
            thresholds=thresholds,
            loss_weights=loss_weights,
            distill_weight=distill_weight,
            backbone_ckpt=None,  # the weights become this module's state: a reload needs no file
            backbone_source=backbone_ckpt,
            distill_temperature=distill_temperature,
        )
        self.net: EarlyExitNet = instantiate(net)
        if backbone_ckpt:
            self._load_backbone(backbone_ckpt)
        k = self.net.num_checkpoints
        weights = [1.0] * k if loss_weights is None else [float(w) for w in loss_weights]
        if len(weights) != k or sum(weights) <= 0:
            raise ValueError(f"model.loss_weights: need {k} weights with a positive sum")
        self.loss_weights = weights
        self.policy = ExitPolicy.of(self.hparams.thresholds, k)

    def _load_backbone(self, path: str) -> None:
        """Start the backbone from a frame classifier's (e.g. the trained teacher's)."""
        hint = "Pass a checkpoint of `dkp-train experiment=teacher` (same backbone config)."
        ckpt = require_kind(path, FrameClassifierModule.kind, hint, "model.backbone_ckpt")
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

    # --- costs -------------------------------------------------------------------------
    @functools.cached_property
    def route(self) -> RouteCosts:
        """GMACs and frames of stopping at each checkpoint (counted once, on first use)."""
        return route_costs(self.net, self.hparams.input_size)

    def build_cost_model(self) -> CostModel:
        """The cost of a video that no checkpoint stops early (the whole route, per frame)."""
        per_frame = self.route.gflops[-1] / self.net.grid.num_frames
        return CostModel(**{f"{self.role}_frame": per_frame})

    # --- EarlyExiting -------------------------------------------------------------------
    @property
    def exit_series(self) -> str:
        return f"Early exit ({self.net.body.family})"

    @property
    def num_checkpoints(self) -> int:
        return self.net.num_checkpoints

    @torch.no_grad()
    def checkpoint_scores(self, batch: Batch) -> CheckpointScores:
        probs = self(batch).float().softmax(-1)
        v, k = probs.shape[:2]
        frames = np.zeros((v, k, 2))
        frames[:, :, 0 if self.role == "student" else 1] = self.route.frames
        return CheckpointScores(probs, np.tile(np.asarray(self.route.gflops), (v, 1)), frames)

    def infer(self, batch: Batch, policy: ExitPolicy | None = None) -> ExitOutput:
        """Progressive inference under ``policy`` (default: the module's thresholds)."""
        out = progressive_inference(self.net, self.frames(batch), policy or self.policy)
        out.gflops = torch.tensor(self.route.gflops, dtype=torch.float64)[out.exit_index]
        return out

    def video_probs(self, batch: Batch) -> torch.Tensor:
        return self.infer(batch).probs

    @override
    def score_view(self, batch: Batch) -> tuple[torch.Tensor, list[VideoCost], torch.Tensor]:
        """Probabilities where each video stopped, its cost up to there, and the checkpoint
        (numbered from 1, as in the tables)."""
        out = self.infer(batch)
        seen = [self.route.frames[k] for k in out.exit_index.tolist()]
        student = self.role == "student"
        costs = [
            VideoCost(vid, float(g), n if student else 0, 0 if student else n)
            for vid, g, n in zip(batch.video_ids, out.gflops.tolist(), seen, strict=True)
        ]
        return out.probs, costs, out.exit_index + 1

    def frame_probs(self, batch: Batch) -> dict[str, FrameSeries]:
        """Each checkpoint's video probabilities, drawn at the frames it has seen."""
        out = self.infer(batch, ExitPolicy.of(None, self.num_checkpoints))
        times = getattr(batch, f"{self.role}_times")
        series = {}
        for k, c in enumerate(self.net.route):
            seen = [i for g in range(c.group + 1) for i in self.net.grid.group_frames(g)]
            seen.sort()
            probs = out.checkpoint_probs[:, k].unsqueeze(1).expand(-1, len(seen), -1)
            series[f"exit {k + 1}"] = FrameSeries(probs, times[:, seen], None)
        return series

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
