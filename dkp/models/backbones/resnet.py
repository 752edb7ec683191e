"""ResNet-18/34/50/101/152 (v1.5) as pooled-feature backbones with torchvision parameter names."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dkp.models.backbones.weight_init import init_conv_bn
from dkp.models.weights import load_state_dict_file

# Blocks per stage and block type for each standard depth.
RESNET_SPECS: dict[int, tuple[str, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
}


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)


def _conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or projected) shortcut, as in ResNet-18/34."""

    expansion = 1

    def __init__(
        self, in_ch: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_ch, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        """Residual update of ``x``."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride: "v1.5"), 1x1 expand by 4, plus shortcut."""

    expansion = 4

    def __init__(
        self, in_ch: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv1x1(in_ch, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        """Residual update of ``x``."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ImageNet ResNet without its classifier: ``forward`` maps (B,3,H,W) to (B, out_dim).

    ``base_width`` sets the stem and first-stage channels (later stages double it) and ``layers``
    the blocks per stage, so tiny variants can run on CPU; defaults give the standard network.
    """

    def __init__(
        self,
        block: str = "basic",
        layers: Sequence[int] = (2, 2, 2, 2),
        base_width: int = 64,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck', got {block!r}")
        if len(layers) != 4 or any(int(n) < 1 for n in layers):
            raise ValueError(f"layers must be 4 positive block counts, got {list(layers)}")
        if base_width < 1:
            raise ValueError(f"base_width must be positive, got {base_width}")
        block_cls: type[BasicBlock] | type[Bottleneck] = (
            BasicBlock if block == "basic" else Bottleneck
        )
        self._in_ch = base_width
        self.conv1 = nn.Conv2d(3, base_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_stage(block_cls, base_width, int(layers[0]), stride=1)
        self.layer2 = self._make_stage(block_cls, base_width * 2, int(layers[1]), stride=2)
        self.layer3 = self._make_stage(block_cls, base_width * 4, int(layers[2]), stride=2)
        self.layer4 = self._make_stage(block_cls, base_width * 8, int(layers[3]), stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.stage_channels: list[int] = [base_width * 2**i * block_cls.expansion for i in range(4)]
        self.out_dim: int = self.stage_channels[-1]
        self._init_weights(zero_init_residual)

    def _make_stage(
        self, block_cls: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int, stride: int
    ) -> nn.Sequential:
        out_ch = planes * block_cls.expansion
        downsample = None
        if stride != 1 or self._in_ch != out_ch:
            downsample = nn.Sequential(
                _conv1x1(self._in_ch, out_ch, stride), nn.BatchNorm2d(out_ch)
            )
        stage = [block_cls(self._in_ch, planes, stride, downsample)]
        self._in_ch = out_ch
        stage += [block_cls(out_ch, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def _init_weights(self, zero_init_residual: bool) -> None:
        init_conv_bn(self)
        if zero_init_residual:
            # Each residual branch then starts as zero, so every block begins as the identity.
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """Feature maps after layer1..layer4 (strides 4, 8, 16, 32), for early-exit heads."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feats = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            feats.append(x)
        return feats

    def forward(self, x: Tensor) -> Tensor:
        """Globally average-pooled last-stage features, shape (B, out_dim)."""
        return torch.flatten(self.avgpool(self.forward_stages(x)[-1]), 1)


def resnet(
    depth: int,
    *,
    base_width: int = 64,
    layers: Sequence[int] | None = None,
    zero_init_residual: bool = False,
    weights: str | None = None,
) -> ResNet:
    """Build a ResNet of standard ``depth`` (18/34/50/101/152), optionally loading local weights.

    ``layers`` overrides the blocks per stage (block type still follows ``depth``).
    """
    if depth not in RESNET_SPECS:
        raise ValueError(f"unknown ResNet depth {depth}; known: {sorted(RESNET_SPECS)}")
    block, default_layers = RESNET_SPECS[depth]
    model = ResNet(
        block=block,
        layers=default_layers if layers is None else layers,
        base_width=base_width,
        zero_init_residual=zero_init_residual,
    )
    if weights is not None:
        load_state_dict_file(model, weights)
    return model
