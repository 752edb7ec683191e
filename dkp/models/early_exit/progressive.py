"""Progressive inference along the route: stop each video early, never compute anything twice.

A :class:`ProgressiveRun` keeps every state it computed, keyed by (frame group, depth) and
by the videos it was computed for. A checkpoint asks for what it needs (exit features of
its groups at its depth, hence their states, hence the shifted-in states of earlier groups);
only what is missing is computed, and only for the videos still running. Which videos stop
at each checkpoint is the :class:`~dkp.models.early_exit.policy.ExitPolicy`'s decision.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dkp.models.early_exit.network import EarlyExitNet
from dkp.models.early_exit.policy import ExitOutput, ExitPolicy
from dkp.models.early_exit.shift import State, online_shift, select_rows


class _Cached:
    """A state computed for the sorted video indices ``rows`` (``frames`` frames each)."""

    def __init__(self, rows: Tensor, frames: int, value: State | Tensor) -> None:
        self.rows, self.frames, self.value = rows, frames, value

    def take(self, rows: Tensor, fold_div: int = 1) -> State | Tensor:
        """The part for ``rows`` (a subset of the cached rows); with ``fold_div`` > 1 only the
        first ``1/fold_div`` of each tensor's channels (all that the shift reads)."""
        value = self.value
        if fold_div > 1:

            def head(v: Tensor) -> Tensor:
                return v[:, : v.shape[1] // fold_div]

            value = head(value) if isinstance(value, Tensor) else [head(v) for v in value]
        if torch.equal(rows, self.rows):
            return value
        pos = torch.searchsorted(self.rows, rows)
        index = (pos.unsqueeze(1) * self.frames + torch.arange(self.frames)).flatten()
        return select_rows(value, index.to(self._device()))

    def _device(self) -> torch.device:
        v = self.value
        return (v if isinstance(v, Tensor) else v[0]).device


class ProgressiveRun:
    """One batch's walk along ``net``'s route with a cache of everything computed."""

    def __init__(self, net: EarlyExitNet, frames: Tensor) -> None:
        net.check_frames(frames)
        self.net, self.frames = net, frames
        self.grid = net.grid
        self.states: dict[tuple[int, int], _Cached] = {}  # (group, depth); depth -1 = stem
        self.pooled: dict[tuple[int, int], _Cached] = {}

    def _input(self, group: int, rows: Tensor) -> Tensor:
        index = torch.tensor(self.grid.group_frames(group), device=self.frames.device)
        x = self.frames[rows.to(self.frames.device)][:, index]
        return self.net.normalize(x.flatten(0, 1))

    def state(self, group: int, depth: int, rows: Tensor) -> State:
        """The output of stage ``depth`` (-1: stem) for ``group``'s frames of videos ``rows``."""
        cached = self.states.get((group, depth))
        if cached is not None:
            return cached.take(rows)
        n = self.grid.sizes[group]
        body = self.net.body
        if depth < 0:
            value = body.stem(self._input(group, rows))
        else:
            x = self.state(group, depth - 1, rows)
            prev = None
            if group > 0 and self.net.shift_div:
                prev = self._shift_source(group, depth - 1, rows)
            x = online_shift(x, prev, self.net.shift_div)
            value = body.stage(depth, x)
        self.states[group, depth] = _Cached(rows, n, value)
        return value

    def _shift_source(self, group: int, depth: int, rows: Tensor) -> State:
        """What the shift moves into ``group``'s frames: the first channels of the previous
        group's state at ``depth``, same slots."""
        self.state(group - 1, depth, rows)  # computed once, if not cached yet
        prev = self.states[group - 1, depth].take(rows, self.net.shift_div)
        return select_rows(prev, self._slots(group, len(rows)))

    def _slots(self, group: int, videos: int) -> Tensor:
        """Rows of the previous group's state paired with this group's frames (same slots)."""
        before, now = self.grid.sizes[group - 1], self.grid.sizes[group]
        index = torch.arange(videos).unsqueeze(1) * before + torch.arange(now)
        return index.flatten().to(self.frames.device)

    def exit_features(self, group: int, depth: int, rows: Tensor) -> Tensor:
        """Exit features ``(len(rows), n_group, D)`` of ``group``'s frames at ``depth``."""
        cached = self.pooled.get((group, depth))
        if cached is not None:
            return cached.take(rows).view(len(rows), self.grid.sizes[group], -1)
        n = self.grid.sizes[group]
        value = self.net.body.exit_features(depth, self.state(group, depth, rows))
        self.pooled[group, depth] = _Cached(rows, n, value)
        return value.view(len(rows), n, -1)

    def logits(self, index: int, rows: Tensor) -> Tensor:
        """Checkpoint ``index``'s logits for videos ``rows``."""
        c = self.net.route[index]
        feats = torch.cat([self.exit_features(g, c.depth, rows) for g in range(c.group + 1)], 1)
        return self.net.head(index, feats.mean(dim=1))


@torch.no_grad()
def progressive_inference(net: EarlyExitNet, frames: Tensor, policy: ExitPolicy) -> ExitOutput:
    """Walk the route, stopping each video where ``policy`` says; exited videos cost nothing
    more. ``gflops`` is left to the caller, which knows what each checkpoint costs."""
    k_total = net.num_checkpoints
    if policy.num_checkpoints != k_total:
        raise ValueError(f"thresholds: {policy.num_checkpoints} given, the route has {k_total}")
    run = ProgressiveRun(net, frames)
    batch, c = frames.shape[0], net.num_classes
    probs = torch.zeros(batch, c, device=frames.device)
    every = torch.full((batch, k_total, c), float("nan"), device=frames.device)
    exit_index = torch.full((batch,), k_total - 1, dtype=torch.long)
    active = torch.arange(batch)
    for k in range(k_total):
        p = run.logits(k, active).float().softmax(-1)
        every[active.to(every.device), k] = p
        stop = policy.stops(k, p).cpu()
        done = active[stop]
        probs[done.to(probs.device)] = p[stop.to(p.device)]
        exit_index[done] = k
        active = active[~stop]
        if len(active) == 0:
            break
    return ExitOutput(probs, exit_index, every)
