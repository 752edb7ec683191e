"""The frames x depth grid: frame groups, checkpoints on it, and the route that visits them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Checkpoint:
    """A classifier after backbone stage ``depth`` over the frames of groups ``0..group``."""

    group: int
    depth: int


def spread_order(groups: int) -> list[int]:
    """Residues ``0..groups-1`` in farthest-point order on a circle of ``groups`` positions.

    Each next residue is the one farthest (circularly) from those already taken, ties to
    the smallest: 4 -> [0, 2, 1, 3], 3 -> [0, 1, 2]. So the union of the first k groups is
    as evenly spread over the video as strides allow.
    """
    order = [0]
    while len(order) < groups:
        rest = [r for r in range(groups) if r not in order]

        def gap(r: int) -> int:
            return min(min(abs(r - o), groups - abs(r - o)) for o in order)

        order.append(max(rest, key=lambda r: (gap(r), -r)))
    return order


def frame_permutation(n: int, groups: int) -> list[int]:
    """A processing order of ``n`` frames (indices in time order) fed as ``groups`` groups.

    Rule: frame ``i`` belongs to the group whose residue is ``i mod groups``, so every group
    is a stride-``groups`` subsample spanning the whole video; the groups come in
    :func:`spread_order` of their residues (those one frame larger, when ``groups`` does not
    divide ``n``, first) and frames in time order inside a group. ``n=8, groups=2`` gives
    ``[0, 2, 4, 6, 1, 3, 5, 7]``; ``n=8, groups=4`` gives ``[0, 4, 2, 6, 1, 5, 3, 7]``.
    """
    if n < 1 or not 1 <= groups <= n:
        raise ValueError(f"need 1 <= groups <= n, got n={n}, groups={groups}")
    order = sorted(spread_order(groups), key=lambda r: r >= n % groups)  # stable
    return [i for r in order for i in range(r, n, groups)]


def group_sizes(n: int, groups: int) -> list[int]:
    """Frames per group when ``n`` frames are cut into ``groups`` (larger groups first)."""
    if n < 1 or not 1 <= groups <= n:
        raise ValueError(f"need 1 <= groups <= n, got n={n}, groups={groups}")
    return [n // groups + (1 if g < n % groups else 0) for g in range(groups)]


@dataclass(frozen=True)
class Grid:
    """How ``num_frames`` frames are fed: a permutation cut into consecutive groups.

    ``permutation[p]`` is the time index of the ``p``-th frame processed. Group ``g`` is the
    positions ``starts[g] : starts[g] + sizes[g]``; slot ``j`` of group ``g`` follows slot
    ``j`` of group ``g - 1`` in the online temporal shift (sizes never grow, so it exists).
    """

    num_frames: int
    groups: int
    permutation: tuple[int, ...]

    @classmethod
    def build(cls, num_frames: int, groups: int, permutation: Sequence[int] | None = None) -> Grid:
        """A grid with the rule of :func:`frame_permutation`, or an explicit permutation."""
        if permutation is None:
            permutation = frame_permutation(num_frames, groups)
        permutation = tuple(int(i) for i in permutation)
        if sorted(permutation) != list(range(num_frames)):
            raise ValueError(
                f"permutation {list(permutation)} is not a permutation of 0..{num_frames - 1}"
            )
        group_sizes(num_frames, groups)  # validates
        return cls(num_frames, groups, permutation)

    @property
    def sizes(self) -> list[int]:
        return group_sizes(self.num_frames, self.groups)

    @property
    def starts(self) -> list[int]:
        sizes = self.sizes
        return [sum(sizes[:g]) for g in range(self.groups)]

    def group_frames(self, group: int) -> list[int]:
        """Time indices of the frames of ``group``, in processing order."""
        start = self.starts[group]
        return list(self.permutation[start : start + self.sizes[group]])

    def shift_source(self) -> list[int]:
        """For each processing position, the position its shifted channels come from (-1: none)."""
        source = []
        for g, size in enumerate(self.sizes):
            prev = self.starts[g - 1] if g > 0 else None
            source += [-1 if prev is None else prev + j for j in range(size)]
        return source


def parse_route(route: Sequence[Sequence[int]], groups: int, depths: int) -> list[Checkpoint]:
    """``[[group, depth], ...]`` from config to checkpoints, checked against the grid."""
    checkpoints = [Checkpoint(int(g), int(d)) for g, d in route]
    if not checkpoints:
        raise ValueError("route: needs at least one checkpoint")
    for c in checkpoints:
        if not (0 <= c.group < groups and 0 <= c.depth < depths):
            raise ValueError(
                f"route: checkpoint {[c.group, c.depth]} is outside the grid of "
                f"{groups} groups x {depths} depths"
            )
    if len(set(checkpoints)) != len(checkpoints):
        raise ValueError(f"route: repeats a checkpoint: {[list(r) for r in route]}")
    return checkpoints
