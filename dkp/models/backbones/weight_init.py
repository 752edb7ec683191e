"""The initialisation torchvision gives its backbones, shared by every dkp backbone."""

from __future__ import annotations

from torch import nn


def init_conv_bn(module: nn.Module) -> None:
    """Kaiming-normal convolutions (fan-out, ReLU gain) and identity batch norms, in module
    order (so a seeded run draws the same weights)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
