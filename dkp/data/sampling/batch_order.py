"""The order videos are drawn in: resumable mid-epoch for training, exact shards under DDP.

Training: :class:`ResumableSampler` is a ``DistributedSampler`` (one replica outside DDP,
so Lightning leaves it in place) whose order depends only on (seed, epoch) and which can
start an epoch part-way; :class:`ResumableLoader` records how many batches it delivered, and
the data module keeps that in the checkpoint, so a resumed run sees exactly the batches the
interrupted one had not (the model restores the global RNG state, for dropout). Each item
carries a seed made from (seed, epoch, index): a video's frames do not depend on that RNG.

Evaluation: :class:`ShardSampler` splits the videos over the processes without padding
(Lightning's ``DistributedSampler`` repeats videos to even out the shards, which would count
them twice in set-level metrics such as mAP).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from dkp.runtime.distributed import world


def global_seed() -> int:
    """The seed of ``seed_everything`` (Lightning keeps it in ``PL_GLOBAL_SEED``), else 0."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A sample's own random seed, from the run's seed, the epoch and the sample index."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class ResumableSampler(DistributedSampler):
    """Shuffled (index, seed) pairs, a deterministic order per epoch; can start part-way."""

    def __init__(self, dataset: Dataset, shuffle: bool = True, seed: int | None = None) -> None:
        rank, size = world()
        seed = global_seed() if seed is None else seed
        super().__init__(dataset, num_replicas=size, rank=rank, shuffle=shuffle, seed=seed)
        self.start = 0  # items of this epoch already consumed; used once, by the next __iter__

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        start, self.start = self.start, 0
        indices = list(super().__iter__())[start:]
        return iter([(i, item_seed(self.seed, self.epoch, i)) for i in indices])


class ResumableLoader(DataLoader):
    """A DataLoader over a :class:`ResumableSampler` whose state is (epoch, batches delivered)."""

    def __iter__(self) -> Iterator[Any]:
        sampler = self.sampler
        self._delivered = sampler.start // self.batch_size if self.batch_size else 0
        for batch in super().__iter__():
            self._delivered += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": getattr(self, "_delivered", 0)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Start the next pass after ``state["batches"]`` batches of epoch ``state["epoch"]``
        (idempotent: loading the same state twice skips the same batches once)."""
        if 0 < state.get("batches", 0) < len(self):
            self.sampler.set_epoch(state["epoch"])
            self.sampler.start = state["batches"] * self.batch_size


class ShardSampler(DistributedSampler):
    """Indices ``rank, rank + world, ...``: every video on exactly one process, none repeated."""

    def __init__(self, dataset: Dataset) -> None:
        rank, size = world()
        super().__init__(dataset, num_replicas=size, rank=rank, shuffle=False)
        self.num_samples = len(range(rank, len(dataset), size))

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, len(self.dataset), self.num_replicas))
