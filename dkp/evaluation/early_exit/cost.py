"""What an early-exit video costs: GMACs of each unit (fvcore), and of the route up to each exit.

Units are the stem, each stage and each exit's feature head per frame, and each checkpoint's
linear classifier per video, counted at the real input size (multiply-adds only, as
:mod:`dkp.evaluation.cost` counts). The route's cost up to checkpoint ``k`` is the sum over
the distinct units that checkpoints ``0..k`` need — a state at (group g, depth d) needs
(g, d - 1) and, for the shift, (g - 1, d - 1); a checkpoint (g, d) needs the exit features
of groups ``0..g`` at depth ``d`` — each counted once, times its group's frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from dkp.data.dataset import as_size
from dkp.evaluation.cost import count_gmacs
from dkp.models.early_exit.network import EarlyExitNet


@dataclass(frozen=True)
class UnitCosts:
    """GMACs of each unit of work: per frame for stem/stage/exit features, per video for heads."""

    stem: float
    stages: tuple[float, ...]
    exits: tuple[float, ...]
    heads: tuple[float, ...]


@dataclass(frozen=True)
class RouteCosts:
    """What stopping at each checkpoint of a route costs one video: the GMACs of everything
    run up to it, and the frames decoded and run by then."""

    gflops: tuple[float, ...]
    frames: tuple[int, ...]


class _Stage(nn.Module):
    """Stage ``index`` as a module of flat tensor inputs (fvcore traces tensors only)."""

    def __init__(self, body: nn.Module, index: int, as_list: bool) -> None:
        super().__init__()
        self.body, self.index, self.as_list = body, index, as_list

    def state(self, tensors: tuple[torch.Tensor, ...]):
        return list(tensors) if self.as_list else tensors[0]

    def forward(self, *tensors: torch.Tensor):
        return self.body.stage(self.index, self.state(tensors))


class _Exit(_Stage):
    def forward(self, *tensors: torch.Tensor):
        return self.body.exit_features(self.index, self.state(tensors))


def _flat(state) -> tuple[torch.Tensor, ...]:
    return tuple(state) if isinstance(state, list) else (state,)


def unit_costs(net: EarlyExitNet, size: int | Sequence[int]) -> UnitCosts:
    """GMACs of every unit of ``net`` for one frame of ``size`` (and one video per head)."""
    height, width = as_size(size)
    device = next(net.parameters()).device
    body = net.body
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(1, 3, height, width, device=device)
            stem_module = _StemOnly(body).eval()
            stem = count_gmacs(stem_module, x)
            state = body.stem(x)
            is_list = isinstance(state, list)
            stages, exits = [], []
            for d in range(body.num_stages):
                stages.append(count_gmacs(_Stage(body, d, is_list).eval(), *_flat(state)))
                state = body.stage(d, state)
                exits.append(count_gmacs(_Exit(body, d, is_list).eval(), *_flat(state)))
            heads = [
                count_gmacs(head, torch.zeros(1, head.in_features, device=device))
                for head in net.heads
            ]
    finally:
        net.train(was_training)
    return UnitCosts(stem, tuple(stages), tuple(exits), tuple(heads))


class _StemOnly(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor):
        return self.body.stem(x)


def cumulative_gmacs(net: EarlyExitNet, costs: UnitCosts) -> list[float]:
    """Cumulative GMACs per video of stopping at each checkpoint of the route."""
    sizes = net.grid.sizes
    done: set[tuple[str, int, int]] = set()
    total, out = 0.0, []

    def need_state(g: int, d: int) -> float:
        if ("state", g, d) in done:
            return 0.0
        done.add(("state", g, d))
        if d < 0:
            return costs.stem * sizes[g]
        spent = need_state(g, d - 1)
        if g > 0 and net.shift_div:
            spent += need_state(g - 1, d - 1)
        return spent + costs.stages[d] * sizes[g]

    def need_exit(g: int, d: int) -> float:
        if ("exit", g, d) in done:
            return 0.0
        done.add(("exit", g, d))
        return need_state(g, d) + costs.exits[d] * sizes[g]

    for k, c in enumerate(net.route):
        total += sum(need_exit(g, c.depth) for g in range(c.group + 1)) + costs.heads[k]
        out.append(total)
    return out


def route_frames(net: EarlyExitNet) -> list[int]:
    """Frames decoded and run by the time each checkpoint of the route is reached."""
    sizes, seen, out = net.grid.sizes, -1, []
    for c in net.route:
        seen = max(seen, c.group)
        out.append(sum(sizes[: seen + 1]))
    return out


def route_costs(net: EarlyExitNet, size: int | Sequence[int]) -> RouteCosts:
    """The cost of stopping at each checkpoint of ``net``'s route on frames of ``size``."""
    return RouteCosts(tuple(cumulative_gmacs(net, unit_costs(net, size))), tuple(route_frames(net)))
