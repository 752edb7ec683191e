"""The early-exit network: a staged backbone over grouped frames, one classifier per checkpoint."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dkp.models.early_exit.grid import Checkpoint, Grid, parse_route
from dkp.models.early_exit.shift import State, shift_channels
from dkp.models.early_exit.stages import staged
from dkp.models.frame_net import IMAGENET_MEAN, IMAGENET_STD, PixelNormalize


class EarlyExitNet(nn.Module):
    """Frames ``(B, num_frames, 3, H, W)`` (uint8, time order) to logits at every checkpoint.

    Frames are processed in the grid's permutation, ``groups`` at a time; before every stage a
    causal temporal shift gives each frame ``1/shift_div`` of the channels of the same slot in
    the previous group (``shift_div=0``: no shift). Checkpoint ``k = (group g, depth d)`` of
    the ``route`` classifies the mean of the depth-``d`` exit features of every frame in
    groups ``0..g`` with its own linear head. :meth:`forward` computes every checkpoint at
    once (training); :func:`dkp.models.early_exit.progressive.progressive_inference` walks the
    route and stops early (:class:`~dkp.models.early_exit.policy.ExitPolicy`), computing only
    what the checkpoints it reaches need.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        num_frames: int,
        groups: int,
        route: Sequence[Sequence[int]],
        permutation: Sequence[int] | None = None,
        shift_div: int = 8,
        dropout: float = 0.0,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if shift_div < 0:
            raise ValueError(f"shift_div must be >= 0 (0: no shift), got {shift_div}")
        self.body = staged(backbone)
        self.grid = Grid.build(num_frames, groups, permutation)
        self.route: list[Checkpoint] = parse_route(route, groups, self.body.num_stages)
        self.num_classes = num_classes
        self.shift_div = shift_div
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.ModuleList(
            nn.Linear(self.body.exit_dims[c.depth], num_classes) for c in self.route
        )
        self.register_buffer("order", torch.tensor(self.grid.permutation), persistent=False)
        self.register_buffer("source", torch.tensor(self.grid.shift_source()), persistent=False)
        self.normalize = PixelNormalize(mean, std)

    @property
    def num_checkpoints(self) -> int:
        return len(self.route)

    def check_frames(self, frames: Tensor) -> None:
        if frames.dim() != 5 or frames.shape[1] != self.grid.num_frames:
            raise ValueError(
                f"early exit expects (B, {self.grid.num_frames}, 3, H, W) frames (adaptive "
                f"sampling with n = {self.grid.num_frames}), got {tuple(frames.shape)}"
            )

    def _shift_all(self, state: State, batch: int) -> State:
        """The shift for every group at once: each position takes its source position's rows."""
        if self.shift_div == 0:
            return state

        def one(t: Tensor) -> Tensor:
            fold = t.shape[1] // self.shift_div
            v = t[:, :fold].reshape(batch, self.grid.num_frames, fold, *t.shape[2:])
            prev = v[:, self.source.clamp_min(0)] * (self.source >= 0).view(1, -1, 1, 1, 1)
            return shift_channels(t, prev.flatten(0, 1), self.shift_div)

        return one(state) if isinstance(state, Tensor) else [one(t) for t in state]

    def _first_frames(self, state: State, batch: int, count: int) -> State:
        """The rows of each video's first ``count`` processed frames."""
        if count == self.grid.num_frames:
            return state

        def one(t: Tensor) -> Tensor:
            return t.view(batch, self.grid.num_frames, *t.shape[1:])[:, :count].flatten(0, 1)

        return one(state) if isinstance(state, Tensor) else [one(t) for t in state]

    def head(self, index: int, pooled: Tensor) -> Tensor:
        """Checkpoint ``index``'s logits from its frames' mean exit features ``(B, D)``."""
        return self.heads[index](self.dropout(pooled))

    def forward(self, frames: Tensor) -> Tensor:
        """Logits ``(B, K, C)`` at all ``K`` checkpoints of the route, every frame computed."""
        self.check_frames(frames)
        batch = frames.shape[0]
        x = frames[:, self.order].flatten(0, 1)
        state = self.body.stem(self.normalize(x))
        ends = [s + n for s, n in zip(self.grid.starts, self.grid.sizes, strict=True)]
        # exit features only of the frames some checkpoint at that depth reads
        needed: dict[int, int] = {}
        for c in self.route:
            needed[c.depth] = max(needed.get(c.depth, 0), ends[c.group])
        pooled: dict[int, Tensor] = {}
        for d in range(max(needed) + 1):
            state = self.body.stage(d, self._shift_all(state, batch))
            if d in needed:
                first = self._first_frames(state, batch, needed[d])
                pooled[d] = self.body.exit_features(d, first).view(batch, needed[d], -1)
        logits = [
            self.head(k, pooled[c.depth][:, : ends[c.group]].mean(dim=1))
            for k, c in enumerate(self.route)
        ]
        return torch.stack(logits, dim=1)
