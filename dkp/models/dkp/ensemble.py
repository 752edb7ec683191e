"""Dynamic student-teacher ensemble: a per-frame, input-dependent mix of two predictions.

For student frame i, ``w_i = sigmoid(gate(x_i))`` mixes the propagated student's class
probabilities with the teacher's probabilities attended at that frame (the propagation
block's attention over teacher frames, averaged over heads):
``p_i = w_i * p_prop_i + (1 - w_i) * sum_j a_ij p_teacher_j``. The video score is the mean
of ``p_i`` over real frames. The gate sees [``gate_input="features"``] the enriched student
features plus the confidence (max probability, entropy) of both predictions, or
[``"confidence"``] the confidences alone. The paper does not give the gate's form.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from dkp.models.frame_net import masked_mean


@dataclass
class EnsembleOutput:
    """Per-frame probabilities ``(B, N_s, C)`` of each source and the video scores ``(B, C)``."""

    frame_probs: torch.Tensor
    propagated_probs: torch.Tensor
    teacher_probs: torch.Tensor
    weights: torch.Tensor
    video_probs: torch.Tensor


def _confidence(probs: torch.Tensor) -> torch.Tensor:
    entropy = -(probs * probs.clamp_min(1e-12).log()).sum(-1, keepdim=True)
    return torch.cat([probs.max(-1, keepdim=True).values, entropy], dim=-1)


class DynamicEnsemble(nn.Module):
    """Mixes propagated-student and attended-teacher frame probabilities with learned weights."""

    def __init__(self, dim: int, hidden: int = 64, gate_input: str = "features") -> None:
        super().__init__()
        if gate_input not in ("features", "confidence"):
            raise ValueError(f"ensemble.gate_input: {gate_input!r} is not features/confidence")
        self.gate_input = gate_input
        in_dim = 4 + (dim if gate_input == "features" else 0)
        self.gate = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(
        self,
        propagated_logits: torch.Tensor,
        features: torch.Tensor,
        teacher_logits: torch.Tensor,
        attention: torch.Tensor,
        student_mask: torch.Tensor | None = None,
    ) -> EnsembleOutput:
        """Logits ``(B, N_s, C)``, features ``(B, N_s, D)``, teacher logits ``(B, N_t, C)``,
        attention ``(B, N_s, N_t)``."""
        p_prop = propagated_logits.float().softmax(-1)
        p_teacher = torch.matmul(attention.float(), teacher_logits.float().softmax(-1))
        cues = [_confidence(p_prop), _confidence(p_teacher)]
        if self.gate_input == "features":
            cues.insert(0, features.float())
        weights = torch.sigmoid(self.gate(torch.cat(cues, dim=-1)))
        frame_probs = weights * p_prop + (1 - weights) * p_teacher
        if student_mask is not None:
            frame_probs = frame_probs * student_mask.unsqueeze(-1)
        return EnsembleOutput(
            frame_probs=frame_probs,
            propagated_probs=p_prop,
            teacher_probs=p_teacher,
            weights=weights.squeeze(-1),
            video_probs=masked_mean(frame_probs, student_mask),
        )
