"""Wall-clock time of batched inference with real early stopping, next to the full model."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch

from dkp.data.batch import Batch
from dkp.lightning.exiting import EarlyExiting
from dkp.models.early_exit.policy import ExitPolicy
from dkp.runtime.results import Timing


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@torch.no_grad()
def time_policies(
    module: EarlyExiting, batches: Sequence[Batch], policies: Sequence[ExitPolicy], repeats: int = 5
) -> list[Timing]:
    """Seconds of batched inference under each policy and of the full model's plain forward,
    in interleaved rounds, best of ``repeats`` each (so a busy machine slows every setting
    alike)."""
    module.eval()

    def full() -> None:
        for b in batches:
            module(b)

    def stopping(policy: ExitPolicy) -> None:
        for b in batches:
            module.infer(b, policy)

    best = [float("inf")] * len(policies)
    best_full = float("inf")
    for _ in range(repeats):
        best_full = min(best_full, _seconds(full))
        for i, policy in enumerate(policies):
            best[i] = min(best[i], _seconds(lambda p=policy: stopping(p)))
    videos = sum(len(b) for b in batches)
    threads = torch.get_num_threads()
    return [Timing(s, best_full, videos, threads, repeats) for s in best]
