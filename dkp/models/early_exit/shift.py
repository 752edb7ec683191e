"""Online (causal) temporal shift: a later frame group borrows channels of the earlier one.

TSM (Lin et al., ICCV 2019) mixes time by shifting a fraction of channels between
neighbouring frames; its online variant only shifts from the past, so features computed for
earlier frames never change. Here the "past" of a frame is the same slot of the previous
frame group (see :class:`dkp.models.early_exit.grid.Grid`): the first ``C // fold_div``
channels of the input of every stage are replaced by the previous group's (unshifted) input
to that stage; the first group gets zeros there. A stage's state may be one tensor (ResNet)
or a list of scales (MSDNet); every scale is shifted alike.
"""

from __future__ import annotations

import torch
from torch import Tensor

State = Tensor | list[Tensor]


def shift_channels(current: Tensor, previous: Tensor | None, fold_div: int) -> Tensor:
    """``current`` with its first ``C // fold_div`` channels taken from ``previous`` (zeros
    where None), built by concatenation: an in-place slice assignment is what tracing freezes
    into a constant (TSM's known export bug), so exported models would not match."""
    fold = current.shape[1] // fold_div
    if fold == 0:
        return current
    head = torch.zeros_like(current[:, :fold]) if previous is None else previous[:, :fold]
    return torch.cat([head, current[:, fold:]], dim=1)


def online_shift(current: State, previous: State | None, fold_div: int) -> State:
    """``current`` with its first ``1/fold_div`` channels taken from ``previous`` (or zeros).

    ``previous`` holds the rows paired with ``current``'s rows (same shapes), or None.
    """
    if fold_div <= 0:
        return current
    if isinstance(current, Tensor):
        return shift_channels(current, previous, fold_div)
    prev = previous if previous is not None else [None] * len(current)
    return [shift_channels(c, p, fold_div) for c, p in zip(current, prev, strict=True)]


def select_rows(state: State, index: Tensor) -> State:
    """The rows ``index`` of a state (a tensor or a list of scale tensors)."""
    if isinstance(state, Tensor):
        return state[index]
    return [s[index] for s in state]
