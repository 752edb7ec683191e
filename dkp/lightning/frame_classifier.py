"""One frame network trained alone: the teacher stage, or the student-only baseline."""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from torch.nn import functional as F

from dkp.data.batch import Batch
from dkp.evaluation.cost import CostModel, frame_gmacs
from dkp.lightning.base import (
    FrameSeries,
    SingleStreamModule,
    plain,
    soft_target,
    without_weight_files,
)
from dkp.models.frame_net import FrameNet, masked_mean


class FrameClassifierModule(SingleStreamModule):
    """A :class:`FrameNet` on the ``role`` stream ("teacher" or "student") of each batch.

    Training: cross-entropy of the mean frame logits (TSN consensus) against the (soft)
    multi-hot target. Evaluation: the video score is the mean of frame probabilities.
    ``net`` is the FrameNet's config (``_target_`` dict), kept in the checkpoint so that
    ``FrameClassifierModule.load_from_checkpoint(path)`` needs nothing else.
    """

    kind = "frame_classifier"

    def __init__(
        self,
        net: dict,
        role: str = "teacher",
        input_size: int | list[int] = 224,
        optimizer: dict | None = None,
        scheduler: dict | None = None,
        classes: list[str] | None = None,
        sampling: dict | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler, classes, sampling)
        self.check_role(role)
        self.save_config(net=without_weight_files(plain(net)), role=role, input_size=input_size)
        self.net: FrameNet = instantiate(net)

    def build_cost_model(self) -> CostModel:
        return CostModel(**{f"{self.role}_frame": frame_gmacs(self.net, self.hparams.input_size)})

    def frame_logits(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        frames, mask = self.stream(batch)
        return self.net(frames, mask).logits, mask

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.video_probs(batch)

    def video_probs(self, batch: Batch) -> torch.Tensor:
        logits, mask = self.frame_logits(batch)
        return masked_mean(logits.float().softmax(-1), mask)

    def frame_probs(self, batch: Batch) -> dict[str, FrameSeries]:
        logits, mask = self.frame_logits(batch)
        times = getattr(batch, f"{self.role}_times")
        return {self.role: FrameSeries(logits.float().softmax(-1), times, mask)}

    def training_loss(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits, mask = self.frame_logits(batch)
        loss = F.cross_entropy(masked_mean(logits, mask), soft_target(batch.target))
        return {"loss": loss}
