"""Backbones as a sequence of stages, each with a pooled exit: what the grid's depths are.

:class:`StagedBackbone` is the interface: ``family`` (its name in curves), ``num_stages``,
``exit_dims`` and three calls, ``stem(x)``, ``stage(i, state)`` and ``exit_features(i,
state) -> (M, exit_dims[i])``. MSDNet has them natively; :class:`ResNetStages` gives them to a
ResNet (stages = layer1..layer4, exit = global average pool).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn
from typing_extensions import override

from dkp.models.backbones.msdnet import MSDNet
from dkp.models.backbones.resnet import ResNet
from dkp.models.early_exit.shift import State


class StagedBackbone(Protocol):
    """A backbone cut into stages, each with a pooled exit."""

    family: str
    num_stages: int
    exit_dims: list[int]

    def stem(self, x: Tensor) -> State:
        """The state before the first stage, from normalised frames ``(M, 3, H, W)``."""
        ...

    def stage(self, index: int, state: State) -> State:
        """Stage ``index`` applied to the previous state."""
        ...

    def exit_features(self, index: int, state: State) -> Tensor:
        """Pooled features ``(M, exit_dims[index])`` of the state after stage ``index``."""
        ...


class ResNetStages(nn.Module, StagedBackbone):
    """A :class:`ResNet` cut after layer1..layer4; exits are global average pools."""

    family = "ResNet"

    def __init__(self, resnet: ResNet) -> None:
        super().__init__()
        self.resnet = resnet
        self.num_stages = 4
        self.exit_dims: list[int] = list(resnet.stage_channels)

    @override
    def stem(self, x: Tensor) -> Tensor:
        r = self.resnet
        return r.maxpool(r.relu(r.bn1(r.conv1(x))))

    @override
    def stage(self, index: int, state: Tensor) -> Tensor:
        return getattr(self.resnet, f"layer{index + 1}")(state)

    @override
    def exit_features(self, index: int, state: Tensor) -> Tensor:
        return torch.flatten(nn.functional.adaptive_avg_pool2d(state, 1), 1)


def staged(backbone: nn.Module) -> StagedBackbone:
    """The staged view of a backbone (ResNet or MSDNet)."""
    if isinstance(backbone, MSDNet):
        return backbone
    if isinstance(backbone, ResNet):
        return ResNetStages(backbone)
    raise ValueError(f"no staged view of {type(backbone).__name__}: use a ResNet or an MSDNet")
