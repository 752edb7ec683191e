"""MobileNetV2 as a pooled-feature backbone with torchvision parameter names."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dkp.models.backbones.weight_init import init_conv_bn
from dkp.models.weights import load_state_dict_file

# (expansion t, channels c, repeats n, first stride s) per group, from the MobileNetV2 paper.
_INVERTED_RESIDUAL_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round ``value`` to a multiple of ``divisor`` without going more than 10% below it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class ConvBNReLU6(nn.Sequential):
    """Conv (no bias), BatchNorm, ReLU6; indices 0/1/2 match torchvision's Conv2dNormActivation."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, groups: int = 1
    ) -> None:
        padding = (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, groups=groups, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1x1), depthwise 3x3, linear project (1x1); residual when shapes allow."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        self.stride = stride
        hidden = int(round(in_ch * expand_ratio))
        self.use_res_connect = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(in_ch, hidden, kernel_size=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block, adding ``x`` back when stride is 1 and channels match."""
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 without its classifier: ``forward`` maps (B,3,H,W) to (B, out_dim).

    ``width_mult`` scales every layer's channels (the final 1x1 conv never drops below 1280).
    """

    def __init__(self, width_mult: float = 1.0, round_nearest: int = 8) -> None:
        super().__init__()
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        in_ch = make_divisible(32 * width_mult, round_nearest)
        last_ch = make_divisible(1280 * max(1.0, width_mult), round_nearest)
        features: list[nn.Module] = [ConvBNReLU6(3, in_ch, stride=2)]
        stride2_starts: list[int] = []
        for t, c, n, s in _INVERTED_RESIDUAL_SETTING:
            out_ch = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                stride = s if i == 0 else 1
                if stride == 2:
                    stride2_starts.append(len(features))
                features.append(InvertedResidual(in_ch, out_ch, stride, t))
                in_ch = out_ch
        features.append(ConvBNReLU6(in_ch, last_ch, kernel_size=1))
        self.features = nn.Sequential(*features)
        # Four stages at strides 4, 8, 16, 32 (like ResNet): each ends just before a stride-2
        # block; the stride-2 stage (stem plus first block) is left out.
        self.stage_ends: list[int] = [i - 1 for i in stride2_starts[1:]] + [len(features) - 1]
        self.stage_channels: list[int] = [self._out_channels(i) for i in self.stage_ends]
        self.out_dim: int = last_ch
        init_conv_bn(self)

    def _out_channels(self, index: int) -> int:
        convs = [m for m in self.features[index].modules() if isinstance(m, nn.Conv2d)]
        return convs[-1].out_channels

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """Feature maps at the ends of the stride-4, 8, 16 and 32 stages, for early-exit heads."""
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.stage_ends:
                feats.append(x)
        return feats

    def forward(self, x: Tensor) -> Tensor:
        """Globally average-pooled features of the last 1x1 conv, shape (B, out_dim)."""
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1)


def mobilenet_v2(width_mult: float = 1.0, *, weights: str | None = None) -> MobileNetV2:
    """Build MobileNetV2 at ``width_mult``, optionally loading a local (torchvision) state_dict."""
    model = MobileNetV2(width_mult=width_mult)
    if weights is not None:
        load_state_dict_file(model, weights)
    return model
