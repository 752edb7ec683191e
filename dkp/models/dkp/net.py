"""The DKP network: student and teacher frame networks, propagation block and ensemble."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dkp.data.batch import Batch
from dkp.models.dkp.ensemble import DynamicEnsemble, EnsembleOutput
from dkp.models.dkp.propagation import PropagationBlock
from dkp.models.frame_net import FrameNet, masked_mean


@dataclass
class DKPOutput:
    """Everything the losses, metrics and figures need from one forward pass."""

    student_logits: torch.Tensor  # (B, N_s, C) the student alone
    teacher_logits: torch.Tensor  # (B, N_t, C) the teacher alone
    propagated_logits: torch.Tensor  # (B, N_s, C) the student enriched by the teacher
    attention: torch.Tensor  # (B, N_s, N_t)
    ensemble: EnsembleOutput

    @property
    def video_probs(self) -> torch.Tensor:
        return self.ensemble.video_probs


def normalized_times(times: torch.Tensor, duration: torch.Tensor) -> torch.Tensor:
    """Seconds to fractions of each video's duration, in [0, 1]."""
    return (times / duration.clamp_min(1e-6).unsqueeze(1)).clamp(0.0, 1.0)


class DKPNet(nn.Module):
    """Student (many cheap frames) + teacher (few expensive frames) + propagation + ensemble."""

    def __init__(
        self,
        student: FrameNet,
        teacher: FrameNet,
        propagation: dict | None = None,
        ensemble: dict | None = None,
    ) -> None:
        super().__init__()
        if student.num_classes != teacher.num_classes:
            raise ValueError(
                f"student has {student.num_classes} classes but teacher {teacher.num_classes}"
            )
        self.student = student
        self.teacher = teacher
        self.propagation = PropagationBlock(
            student.feature_dim, teacher.feature_dim, **(propagation or {})
        )
        self.propagated_classifier = nn.Linear(self.propagation.dim, student.num_classes)
        self.ensemble = DynamicEnsemble(self.propagation.dim, **(ensemble or {}))

    def forward(self, batch: Batch) -> DKPOutput:
        student = self.student(batch.student_frames, batch.student_mask)
        teacher = self.teacher(batch.teacher_frames, batch.teacher_mask)
        return self.fuse(batch, student.features, student.logits, teacher.features, teacher.logits)

    def fuse(
        self,
        batch: Batch,
        student_features: torch.Tensor,
        student_logits: torch.Tensor,
        teacher_features: torch.Tensor,
        teacher_logits: torch.Tensor,
    ) -> DKPOutput:
        """Propagation and ensemble on already computed frame features (dynamic DKP reuses the
        student's)."""
        enriched, attention = self.propagation(
            student_features,
            normalized_times(batch.student_times, batch.duration),
            teacher_features,
            normalized_times(batch.teacher_times, batch.duration),
            batch.teacher_mask,
        )
        propagated = self.propagated_classifier(enriched)
        ensemble = self.ensemble(
            propagated, enriched, teacher_logits, attention, batch.student_mask
        )
        return DKPOutput(student_logits, teacher_logits, propagated, attention, ensemble)


class DKPFusion(nn.Module):
    """DKP after the backbones, on plain tensors with every frame real: student features
    ``(B, N_s, D_s)`` and times ``(B, N_s)``, teacher features ``(B, N_t, D_t)``, logits
    ``(B, N_t, C)`` and times ``(B, N_t)``, times as fractions of the video
    (:func:`normalized_times`), to video probabilities ``(B, C)`` and ensemble frame
    probabilities ``(B, N_s, C)``. What cost counting and export trace."""

    def __init__(self, net: DKPNet) -> None:
        super().__init__()
        self.net = net

    def forward(
        self,
        student_features: torch.Tensor,
        student_times: torch.Tensor,
        teacher_features: torch.Tensor,
        teacher_logits: torch.Tensor,
        teacher_times: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        net = self.net
        enriched, attention = net.propagation(
            student_features, student_times, teacher_features, teacher_times
        )
        propagated = net.propagated_classifier(enriched)
        out = net.ensemble(propagated, enriched, teacher_logits, attention)
        return out.video_probs, out.frame_probs


def video_logits(frame_logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Video-level logits as the mean of frame logits over real frames (TSN consensus)."""
    return masked_mean(frame_logits, mask)
