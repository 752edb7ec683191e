"""The route as steps with explicit state: what a runtime that stops between checkpoints runs.

Step ``k`` computes what checkpoint ``k`` needs that earlier steps did not, exactly as
progressive inference does (:mod:`.progressive`), from the frame groups it is the first to
read and the state the earlier steps carried: the stage outputs later steps continue from,
the first ``C // shift_div`` channels of the stage inputs the online shift hands to the next
group (no more than that), and the pooled exit features later checkpoints average. It
returns checkpoint ``k``'s logits and the state of step ``k + 1``, so a runtime stops a video
after any step. Each step is a module on a flat tuple of tensors, any batch size, and traces
for TorchScript and ONNX (``dkp-export``); :class:`EarlyExitSteps` runs them in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from dkp.models.early_exit.network import EarlyExitNet
from dkp.models.early_exit.policy import ExitOutput, ExitPolicy
from dkp.models.early_exit.shift import State, online_shift

#: ("state", group, depth) is a stage's output (depth -1: the stem's); ("exit", group,
#: depth) the pooled exit features ``(B, frames of the group, D)`` at that depth.
Key = tuple[str, int, int]


@dataclass(frozen=True)
class Carried:
    """A value one step hands to the next: all of it or, for a state only the online shift
    still reads, its first ``C // shift_div`` channels; ``arity`` is 0 for one tensor, else
    the number of scale tensors (MSDNet)."""

    key: Key
    shift_only: bool
    arity: int

    @property
    def name(self) -> str:
        kind, group, depth = self.key
        kind = "shift" if self.shift_only else kind
        return f"{kind}_g{group}_" + ("stem" if depth < 0 else f"d{depth}")

    @property
    def names(self) -> list[str]:
        """The names of its tensors in a step's flat inputs and outputs."""
        return [self.name] if self.arity == 0 else [f"{self.name}_s{i}" for i in range(self.arity)]


@dataclass(frozen=True)
class StepPlan:
    """Step ``checkpoint``: the frame groups it reads first, the operations it runs in order
    (``("stem", g, -1)``, ``("stage", g, d)``, ``("exit", g, d)``) and what it carries."""

    checkpoint: int
    groups: tuple[int, ...]
    ops: tuple[tuple[str, int, int], ...]
    inputs: tuple[Carried, ...]
    outputs: tuple[Carried, ...]

    @property
    def input_names(self) -> list[str]:
        return [f"frames_g{g}" for g in self.groups] + [n for c in self.inputs for n in c.names]

    @property
    def output_names(self) -> list[str]:
        """``logits``, then the carried state, named as the next step's inputs + ``_next``
        (a graph's input and output names must differ where a value passes through)."""
        return ["logits"] + [f"{n}_next" for c in self.outputs for n in c.names]


@dataclass
class _Uses:
    """Where each value is made and which later steps read it (fully or for the shift)."""

    made: dict[Key, int] = field(default_factory=dict)
    full: dict[Key, set[int]] = field(default_factory=dict)
    shift: dict[Key, set[int]] = field(default_factory=dict)

    def read(self, key: Key, step: int, shift: bool = False) -> None:
        (self.shift if shift else self.full).setdefault(key, set()).add(step)

    def carried(self, after: int) -> list[tuple[Key, bool]]:
        """Values made by step ``after`` or earlier that a later step reads."""
        out = []
        for key, made in self.made.items():
            full = any(s > after for s in self.full.get(key, ()))
            shift = any(s > after for s in self.shift.get(key, ()))
            if made <= after and (full or shift):
                out.append((key, not full))
        return out


def plan_steps(net: EarlyExitNet, arity: Callable[[int], int]) -> list[StepPlan]:
    """One :class:`StepPlan` per checkpoint of ``net``'s route; ``arity(depth)`` is how many
    tensors a state after stage ``depth`` has (0: one plain tensor)."""
    uses = _Uses()
    ops: list[list[tuple[str, int, int]]] = []
    groups: list[list[int]] = []

    def state(g: int, d: int, k: int) -> None:
        if ("state", g, d) in uses.made:
            return
        if d < 0:
            groups[k].append(g)
            ops[k].append(("stem", g, -1))
        else:
            state(g, d - 1, k)
            uses.read(("state", g, d - 1), k)
            if g > 0 and net.shift_div:
                state(g - 1, d - 1, k)
                uses.read(("state", g - 1, d - 1), k, shift=True)
            ops[k].append(("stage", g, d))
        uses.made["state", g, d] = k

    for k, c in enumerate(net.route):
        ops.append([])
        groups.append([])
        for g in range(c.group + 1):
            if ("exit", g, c.depth) not in uses.made:
                state(g, c.depth, k)
                uses.read(("state", g, c.depth), k)
                ops[k].append(("exit", g, c.depth))
                uses.made["exit", g, c.depth] = k
            uses.read(("exit", g, c.depth), k)

    def carried(after: int) -> tuple[Carried, ...]:
        if after < 0:
            return ()
        values = uses.carried(after)
        return tuple(
            Carried(key, only, 0 if key[0] == "exit" else arity(key[2])) for key, only in values
        )

    return [
        StepPlan(k, tuple(groups[k]), tuple(ops[k]), carried(k - 1), carried(k))
        for k in range(len(net.route))
    ]


def _flat(value: State) -> list[Tensor]:
    return [value] if isinstance(value, Tensor) else list(value)


def _slice(value: State, fold_div: int) -> State:
    """The first ``C // fold_div`` channels of each tensor: all the online shift reads."""

    def head(t: Tensor) -> Tensor:
        return t[:, : t.shape[1] // fold_div]

    return head(value) if isinstance(value, Tensor) else [head(t) for t in value]


def _paired(value: State, before: int, now: int) -> State:
    """Rows of the previous group's state paired, slot by slot, with this group's ``now``
    frames (each video's first ``now`` of its ``before`` rows)."""

    def rows(t: Tensor) -> Tensor:
        return t if before == now else t.unflatten(0, (-1, before))[:, :now].flatten(0, 1)

    return rows(value) if isinstance(value, Tensor) else [rows(t) for t in value]


class Step(nn.Module):
    """One step of the route on plain tensors: ``(*frames of its new groups, *carried state)``
    to ``(logits (B, C), *carried state)``, named as :class:`StepPlan` says."""

    def __init__(self, net: EarlyExitNet, plan: StepPlan) -> None:
        super().__init__()
        self.net = net
        self.plan = plan

    def forward(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        net, plan, sizes = self.net, self.plan, self.net.grid.sizes
        given = iter(inputs)
        frames = {g: next(given) for g in plan.groups}
        env: dict[Key, State] = {c.key: _take(given, c.arity) for c in plan.inputs}
        for op, g, d in plan.ops:
            if op == "stem":
                env["state", g, -1] = net.body.stem(net.normalize(frames[g].flatten(0, 1)))
            elif op == "stage":
                prev = None
                if g > 0 and net.shift_div:
                    prev = _paired(env["state", g - 1, d - 1], sizes[g - 1], sizes[g])
                x = online_shift(env["state", g, d - 1], prev, net.shift_div)
                env["state", g, d] = net.body.stage(d, x)
            else:
                pooled = net.body.exit_features(d, env["state", g, d])
                env["exit", g, d] = pooled.unflatten(0, (-1, sizes[g]))
        c = net.route[plan.checkpoint]
        feats = torch.cat([env["exit", g, c.depth] for g in range(c.group + 1)], dim=1)
        out = [net.head(plan.checkpoint, feats.mean(dim=1))]
        sliced = {c.key for c in plan.inputs if c.shift_only}
        for carried in plan.outputs:
            value = env[carried.key]
            if carried.shift_only and carried.key not in sliced:
                value = _slice(value, net.shift_div)
            out += _flat(value)
        return tuple(out)


def _take(given: Iterator[Tensor], arity: int) -> State:
    return next(given) if arity == 0 else [next(given) for _ in range(arity)]


def state_arity(net: EarlyExitNet) -> Callable[[int], int]:
    """How many tensors the state after stage ``depth`` has (0: one tensor), from one pass
    of a small frame through the backbone."""
    x = torch.zeros(1, 3, 64, 64, device=net.order.device)
    counts = {}
    with torch.no_grad():
        state = net.body.stem(x)
        counts[-1] = 0 if isinstance(state, Tensor) else len(state)
        for d in range(net.body.num_stages):
            state = net.body.stage(d, state)
            counts[d] = 0 if isinstance(state, Tensor) else len(state)
    return counts.__getitem__


class EarlyExitSteps(nn.Module):
    """``net``'s route as :class:`Step` modules, ``steps[k]`` for checkpoint ``k``."""

    def __init__(self, net: EarlyExitNet) -> None:
        super().__init__()
        self.net = net
        self.plans = plan_steps(net, state_arity(net))
        self.steps = nn.ModuleList(Step(net, plan) for plan in self.plans)

    def group_frames(self, frames: Tensor, plan: StepPlan) -> list[Tensor]:
        """The frames ``(B, n_g, 3, H, W)`` of each group ``plan`` reads first, from a
        video's frames ``(B, num_frames, 3, H, W)`` in time order."""
        grid = self.net.grid
        return [frames[:, grid.group_frames(g)] for g in plan.groups]

    @torch.no_grad()
    def run(
        self,
        frames: Tensor,
        policy: ExitPolicy,
        steps: Sequence[Callable[..., Sequence[Tensor]]] | None = None,
    ) -> ExitOutput:
        """Walk the route step by step, a video leaving the batch at the first checkpoint
        ``policy`` stops it at (:func:`~.progressive.progressive_inference`'s output);
        ``steps`` replaces the modules (e.g. exported ones' runners)."""
        self.net.check_frames(frames)
        steps = steps or list(self.steps)
        k_total, batch = len(self.plans), frames.shape[0]
        probs = torch.zeros(batch, self.net.num_classes)
        every = torch.full((batch, k_total, self.net.num_classes), float("nan"))
        exit_index = torch.full((batch,), k_total - 1, dtype=torch.long)
        active, carried = torch.arange(batch), []
        for k, plan in enumerate(self.plans):
            out = steps[k](*self.group_frames(frames[active], plan), *carried)
            p = out[0].float().softmax(-1).cpu()
            every[active, k] = p
            stop = policy.stops(k, p)
            probs[active[stop]] = p[stop]
            exit_index[active[stop]] = k
            keep = ~stop
            active = active[keep]
            if len(active) == 0:
                break
            carried = [_keep_videos(t, keep) for t in out[1:]]
        return ExitOutput(probs, exit_index, every)


def _keep_videos(t: Tensor, keep: Tensor) -> Tensor:
    """The rows of the videos ``keep`` selects, in a tensor of ``len(keep)`` videos' rows."""
    keep = keep.to(t.device)
    return t.unflatten(0, (len(keep), -1))[keep].flatten(0, 1)
