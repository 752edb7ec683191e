"""Small helpers for code that runs in every process of a distributed (DDP) run."""

from __future__ import annotations

from typing import TypeVar

import torch.distributed as dist

T = TypeVar("T")


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a distributed run."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_lists(items: list[T]) -> list[T]:
    """Every process's ``items``, concatenated in rank order (a collective: all ranks call it)."""
    rank, size = world()
    if size == 1:
        return list(items)
    gathered: list[list[T] | None] = [None] * size
    dist.all_gather_object(gathered, list(items))
    return [item for part in gathered for item in part or []]
