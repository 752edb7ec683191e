"""Backbones as a sequence of stages, each with a pooled exit: what the grid's depths are.

A staged backbone has ``num_stages``, ``exit_dims`` and three calls: ``stem(x)``,
``stage(i, state)`` and ``exit_features(i, state) -> (M, exit_dims[i])``. MSDNet has them
natively; :class:`ResNetStages` gives them to a ResNet (stages = layer1..layer4, exit = global
average pool).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dkp.models.backbones.msdnet import MSDNet
from dkp.models.backbones.resnet import ResNet


class ResNetStages(nn.Module):
    """A :class:`ResNet` cut after layer1..layer4; exits are global average pools."""

    def __init__(self, resnet: ResNet) -> None:
        super().__init__()
        self.resnet = resnet
        self.num_stages = 4
        self.exit_dims: list[int] = list(resnet.stage_channels)

    def stem(self, x: Tensor) -> Tensor:
        r = self.resnet
        return r.maxpool(r.relu(r.bn1(r.conv1(x))))

    def stage(self, index: int, x: Tensor) -> Tensor:
        return getattr(self.resnet, f"layer{index + 1}")(x)

    def exit_features(self, index: int, x: Tensor) -> Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)


def staged(backbone: nn.Module) -> nn.Module:
    """The staged view of a backbone (ResNet or MSDNet)."""
    if isinstance(backbone, MSDNet):
        return backbone
    if isinstance(backbone, ResNet):
        return ResNetStages(backbone)
    raise ValueError(f"no staged view of {type(backbone).__name__}: use a ResNet or an MSDNet")
