"""A 2-D backbone applied frame by frame, with a linear classifier: the student or the teacher."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class FrameOutput:
    """Per-frame features ``(B, N, D)`` and logits ``(B, N, C)``; padded frames hold zeros."""

    features: torch.Tensor
    logits: torch.Tensor


class PixelNormalize(nn.Module):
    """uint8 (or [0, 255] float) frames to the backbone's normalised float input."""

    def __init__(
        self,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255, persistent=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return (frames.float() - self.mean) / self.std


class FrameNet(nn.Module):
    """Backbone + classifier over every real frame of a padded clip batch.

    Frames arrive as uint8 ``(B, N, 3, H, W)`` and are normalised here, on the model's
    device. Only frames where ``mask`` is True are run through the backbone, so padding
    costs nothing and cannot change any output.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        dropout: float = 0.0,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.backbone = backbone
        self.feature_dim: int = backbone.out_dim
        self.num_classes = num_classes
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.feature_dim, num_classes)
        self.normalize = PixelNormalize(mean, std)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor | None = None) -> FrameOutput:
        batch, count = frames.shape[:2]
        flat = frames.flatten(0, 1)
        if mask is None:
            features = self.backbone(self.normalize(flat))
        else:
            keep = mask.flatten()
            real = self.backbone(self.normalize(flat[keep]))
            features = real.new_zeros(batch * count, real.shape[1])
            features[keep] = real
        logits = self.classifier(self.dropout(features))
        if mask is not None:
            logits = logits * mask.flatten().unsqueeze(1)
        return FrameOutput(
            features.view(batch, count, -1), logits.view(batch, count, self.num_classes)
        )


class FrameLogits(nn.Module):
    """A :class:`FrameNet` on plain tensors: uint8 frames ``(B, N, 3, H, W)``, every one real,
    to per-frame features ``(B, N, D)`` and logits ``(B, N, C)``; what export traces."""

    def __init__(self, net: FrameNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(frames)
        return out.features, out.logits


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the frame axis (dim 1) of ``(B, N, ...)`` counting only real frames."""
    if mask is None:
        return values.mean(dim=1)
    weights = mask.to(values.dtype).view(*mask.shape, *([1] * (values.dim() - 2)))
    return (values * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
