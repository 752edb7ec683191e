"""Image backbones by name, for configs: ``_target_: dkp.models.backbones.build_backbone``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from dkp.models.backbones.mobilenet import MobileNetV2, mobilenet_v2
from dkp.models.backbones.msdnet import MSDNet, msdnet, msdnet38
from dkp.models.backbones.resnet import ResNet, resnet

BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "resnet18": partial(resnet, 18),
    "resnet34": partial(resnet, 34),
    "resnet50": partial(resnet, 50),
    "resnet101": partial(resnet, 101),
    "resnet152": partial(resnet, 152),
    "mobilenet_v2": mobilenet_v2,
    "msdnet": msdnet,
    "msdnet38": msdnet38,
}


def build_backbone(name: str, **kwargs: object) -> nn.Module:
    """Build the backbone ``name`` with its keyword options (e.g. base_width, layers, weights).

    Every backbone returns pooled features (B, out_dim) and has ``out_dim`` and ``forward_stages``.
    """
    try:
        factory = BACKBONES[name]
    except KeyError:
        raise ValueError(
            f"backbone.name: unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}"
        ) from None
    return factory(**kwargs)


__all__ = [
    "BACKBONES",
    "MSDNet",
    "MobileNetV2",
    "ResNet",
    "build_backbone",
    "mobilenet_v2",
    "msdnet",
    "msdnet38",
    "resnet",
]
