"""MSDNet (Huang et al., ICLR 2018): a multi-scale dense network with intermediate classifiers.

Plain-torch re-implementation of the construction in the authors' PyTorch code
(github.com/kalviny/MSDNet-PyTorch, ``models/msdnet.py`` and ``args.py``): ``n_scales`` =
``len(gr_factor)`` feature scales; block ``b`` holds ``base`` (b = 0) or ``step`` MSD layers
("even" step mode; "lin_grow": ``step * b + 1``); each layer adds ``growth_rate * gr_factor[s]``
channels at every kept scale (a regular 3x3 conv of the same scale plus a strided 3x3 conv of
the finer scale, with 1x1 bottlenecks of width ``bn_factor[s] * out``); scales are dropped as
the network deepens ("max" pruning) with a 1x1 transition halving the channels
(``reduction``). Exit ``b`` reads the coarsest scale after block ``b`` through two strided 3x3
convs and an average pool; its linear classifier lives with whoever uses the features.

"MSDNet-38" (Dynamic Inference, CVPRW 2020, supplement Table 1) is taken to be the ImageNet
MSDNet with k = 7 (:func:`msdnet38`): the MSDNet paper (Sec. 5) puts the i-th of its five
ImageNet classifiers on layer ``k * i + 3`` for k in {4, 6, 7}, so k = 7 puts the last one on
layer 38. Its arguments are the official ImageNet ones (README of kalviny/MSDNet-PyTorch:
``--nBlocks 5 --stepmode even --nChannels 32 --growthRate 16 --grFactor 1-2-4-4
--bnFactor 1-2-4-4``, defaults ``--prune max --reduction 0.5 --bottleneck True``) with
``--step 7 --base 7`` (the released ``step=7/msdnet-step=7-block=5`` model). The six
checkpoints of the supplement's table come from the frames x depth grid over these five exits
(see ``conf/model/early_exit_msdnet.yaml``). The per-exit cost and parameters that the
authors' op counter prints for that model (kalviny/MSDNet-PyTorch issue #10: 615.69,
1436.39, 2283.21, 2967.42, 3253.79 MFLOPs and 8.76, 20.15, 31.73, 41.86, 62.31 M parameters,
cumulative, 224x224, 1000 classes) are reproduced exactly in ``tests/models/test_msdnet.py``;
in our convention (multiply-adds only, fvcore) the exits cost 0.612, 1.431, 2.276, 2.960 and
3.246 GMACs per frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dkp.models.backbones.weight_init import init_conv_bn

Scales = list[Tensor]


class ConvBNReLU(nn.Sequential):
    """Conv (no bias), BatchNorm, ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, stride, (kernel - 1) // 2, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class BottleneckConv(nn.Sequential):
    """Optional 1x1 bottleneck (width ``min(in, bn_width * out)``), then a 3x3 conv."""

    def __init__(
        self, in_ch: int, out_ch: int, stride: int, bottleneck: bool, bn_width: int
    ) -> None:
        layers: list[nn.Module] = []
        inner = in_ch
        if bottleneck:
            inner = min(in_ch, bn_width * out_ch)
            layers.append(ConvBNReLU(in_ch, inner, kernel=1))
        layers.append(ConvBNReLU(inner, out_ch, kernel=3, stride=stride))
        super().__init__(*layers)


class ScaleOutput(nn.Module):
    """One scale of an MSD layer: the input plus new channels from it (and the finer scale)."""

    def __init__(
        self, same_ch: int, out_ch: int, finer_ch: int | None, bottleneck: bool, bn: Sequence[int]
    ) -> None:
        super().__init__()
        self.has_finer = finer_ch is not None
        if self.has_finer:
            self.down = BottleneckConv(finer_ch, out_ch // 2, 2, bottleneck, bn[0])
            self.normal = BottleneckConv(same_ch, out_ch // 2, 1, bottleneck, bn[1])
        else:
            self.normal = BottleneckConv(same_ch, out_ch, 1, bottleneck, bn[1])

    def forward(self, same: Tensor, finer: Tensor | None = None) -> Tensor:
        if self.has_finer:
            return torch.cat([same, self.down(finer), self.normal(same)], dim=1)
        return torch.cat([same, self.normal(same)], dim=1)


class MSDLayer(nn.Module):
    """Maps ``in_scales`` feature maps to ``out_scales`` (the finest ones dropped first)."""

    def __init__(
        self,
        in_ch: int,
        growth: int,
        in_scales: int,
        out_scales: int,
        gr_factor: Sequence[int],
        bn_factor: Sequence[int],
        bottleneck: bool,
    ) -> None:
        super().__init__()
        n_scales = len(gr_factor)
        self.offset = n_scales - out_scales
        self.discard = in_scales - out_scales
        self.scales = nn.ModuleList()
        for s in range(self.offset, n_scales):
            finer = s > self.offset or self.discard > 0
            self.scales.append(
                ScaleOutput(
                    in_ch * gr_factor[s],
                    growth * gr_factor[s],
                    in_ch * gr_factor[s - 1] if finer else None,
                    bottleneck,
                    (bn_factor[s - 1] if finer else 0, bn_factor[s]),
                )
            )

    def forward(self, x: Scales) -> Scales:
        # x[0] is the finest input scale; with a discard it only feeds the next scale down.
        first = self.discard
        out = []
        for i, module in enumerate(self.scales):
            j = first + i
            out.append(module(x[j], x[j - 1] if module.has_finer else None))
        return out


class Transition(nn.Module):
    """1x1 conv per scale, shrinking the channels after scales were dropped."""

    def __init__(self, in_ch: int, out_ch: int, scales: Sequence[int], gr_factor: Sequence[int]):
        super().__init__()
        self.convs = nn.ModuleList(
            ConvBNReLU(in_ch * gr_factor[s], out_ch * gr_factor[s], kernel=1) for s in scales
        )

    def forward(self, x: Scales) -> Scales:
        return [conv(t) for conv, t in zip(self.convs, x, strict=True)]


class FirstLayer(nn.Module):
    """The stem at every scale: ImageNet 7x7/2 + max-pool (or CIFAR 3x3), then strided 3x3s."""

    def __init__(self, channels: int, gr_factor: Sequence[int], stem: str) -> None:
        super().__init__()
        first = channels * gr_factor[0]
        if stem == "imagenet":
            head = nn.Sequential(
                nn.Conv2d(3, first, 7, 2, 3),  # with bias, as in the authors' code
                nn.BatchNorm2d(first),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        elif stem == "cifar":
            head = ConvBNReLU(3, first, 3, 1)
        else:
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {stem!r}")
        layers: list[nn.Module] = [head]
        for s in range(1, len(gr_factor)):
            layers.append(ConvBNReLU(channels * gr_factor[s - 1], channels * gr_factor[s], 3, 2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> Scales:
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out


def block_steps(n_blocks: int, base: int, step: int, stepmode: str) -> list[int]:
    """MSD layers per block: ``base`` then ``step`` ("even") or ``step * b + 1`` ("lin_grow")."""
    if stepmode not in ("even", "lin_grow"):
        raise ValueError(f"stepmode must be 'even' or 'lin_grow', got {stepmode!r}")
    return [base] + [step if stepmode == "even" else step * b + 1 for b in range(1, n_blocks)]


class MSDNet(nn.Module):
    """MSDNet without its linear classifiers: ``n_blocks`` stages, each with a pooled exit.

    Early-exit interface: ``stem(x)``, ``stage(i, scales)``, ``exit_features(i, scales)``
    (pooled ``(M, exit_dims[i])``). ``forward`` returns the last exit's pooled features, so it
    also serves as a plain frame backbone (``out_dim``).
    """

    family = "MSDNet"  # how curves and tables name early exit on this backbone

    def __init__(
        self,
        n_blocks: int = 5,
        base: int = 4,
        step: int = 4,
        stepmode: str = "even",
        channels: int = 32,
        growth_rate: int = 16,
        gr_factor: Sequence[int] = (1, 2, 4, 4),
        bn_factor: Sequence[int] = (1, 2, 4, 4),
        reduction: float = 0.5,
        bottleneck: bool = True,
        stem: str = "imagenet",
    ) -> None:
        super().__init__()
        gr_factor, bn_factor = [int(g) for g in gr_factor], [int(b) for b in bn_factor]
        if len(gr_factor) != len(bn_factor) or not gr_factor:
            raise ValueError("gr_factor and bn_factor need one entry per scale")
        if n_blocks < 1 or base < 1 or step < 1:
            raise ValueError("n_blocks, base and step must be >= 1")
        n_scales = len(gr_factor)
        self.steps = block_steps(n_blocks, base, step, stepmode)
        total = sum(self.steps)
        interval = math.ceil(total / n_scales)
        self.first = FirstLayer(channels, gr_factor, stem)
        self.blocks = nn.ModuleList()
        self.exits = nn.ModuleList()
        self.exit_dims: list[int] = []
        in_ch, layer = channels, 0
        for n_layers in self.steps:
            block: list[nn.Module] = []
            for _ in range(n_layers):
                layer += 1
                in_scales = n_scales - math.floor(max(0, layer - 2) / interval)
                out_scales = n_scales - math.floor((layer - 1) / interval)
                block.append(
                    MSDLayer(
                        in_ch, growth_rate, in_scales, out_scales, gr_factor, bn_factor, bottleneck
                    )
                )
                in_ch += growth_rate
                if in_scales > out_scales and reduction > 0:
                    out_ch = math.floor(reduction * in_ch)
                    kept = range(n_scales - out_scales, n_scales)
                    block.append(Transition(in_ch, out_ch, kept, gr_factor))
                    in_ch = out_ch
            self.blocks.append(nn.Sequential(*block))
            coarse = in_ch * gr_factor[-1]
            self.exits.append(
                nn.Sequential(
                    ConvBNReLU(coarse, coarse, 3, 2),
                    ConvBNReLU(coarse, coarse, 3, 2),
                    nn.AdaptiveAvgPool2d(1),  # = the authors' AvgPool2d(2) on their 2x2 map
                    nn.Flatten(1),
                )
            )
            self.exit_dims.append(coarse)
        self.num_stages: int = n_blocks
        self.out_dim: int = self.exit_dims[-1]
        init_conv_bn(self)

    def stem(self, x: Tensor) -> Scales:
        """The first layer: one feature map per scale."""
        return self.first(x)

    def stage(self, index: int, x: Scales) -> Scales:
        """Block ``index`` (its MSD layers and transitions)."""
        return self.blocks[index](x)

    def exit_features(self, index: int, x: Scales) -> Tensor:
        """Exit ``index``'s pooled features of the coarsest scale, ``(M, exit_dims[index])``."""
        return self.exits[index](x[-1])

    def forward_stages(self, x: Tensor) -> list[Tensor]:
        """Pooled exit features after every block."""
        state, feats = self.stem(x), []
        for i in range(self.num_stages):
            state = self.stage(i, state)
            feats.append(self.exit_features(i, state))
        return feats

    def forward(self, x: Tensor) -> Tensor:
        """The last exit's pooled features, shape (B, out_dim)."""
        state = self.stem(x)
        for i in range(self.num_stages):
            state = self.stage(i, state)
        return self.exit_features(self.num_stages - 1, state)


def msdnet(**kwargs: object) -> MSDNet:
    """An MSDNet with the given arguments (see :class:`MSDNet`)."""
    return MSDNet(**kwargs)


def msdnet38(**overrides: object) -> MSDNet:
    """The ImageNet MSDNet with k = 7 (five exits on layers 10, 17, 24, 31, 38): "MSDNet-38"."""
    args: dict[str, object] = {"n_blocks": 5, "base": 7, "step": 7, "stepmode": "even"}
    return MSDNet(**{**args, **overrides})
