"""The one exit rule, used online (progressive inference) and offline (scoring thresholds).

A video stops at the first checkpoint whose stopping score reaches that checkpoint's
threshold; the last checkpoint stops every video still running. The score is the maximum
class probability (the papers' rule) unless a policy brings another (a learned one:
:class:`~dkp.models.early_exit.stopping.LearnedStop`). Early-exit networks and dynamic DKP
both follow it, and so does every evaluation of their exits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import Tensor


class StopScore(Protocol):
    """How sure checkpoint ``k`` is of each video, from its class probabilities ``(B, C)``."""

    def __call__(self, k: int, probs: Tensor) -> Tensor: ...


def max_probability(_k: int, probs: Tensor) -> Tensor:
    """The papers' stopping score: the highest class probability ``(B,)``."""
    return probs.max(dim=1).values


@dataclass(frozen=True)
class ExitPolicy:
    """One threshold per checkpoint (the last one's is never read: it always stops) and the
    stopping score they are compared with."""

    thresholds: tuple[float, ...]
    score: StopScore = field(default=max_probability, compare=False)

    @classmethod
    def of(
        cls,
        thresholds: float | Sequence[float] | None,
        count: int,
        score: StopScore = max_probability,
    ) -> ExitPolicy:
        """From config: None (never stop early), one number for every checkpoint, or a list of
        ``count`` (or ``count - 1``: the last checkpoint needs none) numbers."""
        if thresholds is None:
            values = [float("inf")] * count
        elif isinstance(thresholds, (int, float)):
            values = [float(thresholds)] * count
        else:
            values = [float(t) for t in thresholds]
            if len(values) == count - 1:
                values.append(0.0)
            if len(values) != count:
                raise ValueError(
                    f"thresholds: need {count} (or {count - 1}) values, got {len(values)}"
                )
        return cls(tuple(values), score)

    @property
    def num_checkpoints(self) -> int:
        return len(self.thresholds)

    def stops(self, k: int, probs: Tensor) -> Tensor:
        """Which videos stop at checkpoint ``k`` given their class probabilities ``(B, C)``."""
        if k == self.num_checkpoints - 1:
            return torch.ones(probs.shape[0], dtype=torch.bool, device=probs.device)
        return self.score(k, probs) >= self.thresholds[k]

    def exits(self, probs: Tensor) -> Tensor:
        """The checkpoint ``(V,)`` each video stops at, from its probabilities ``(V, K, C)``
        at every checkpoint (offline: what the online walk would do)."""
        stop = torch.stack([self.stops(k, probs[:, k]) for k in range(probs.shape[1])], dim=1)
        return stop.float().argmax(dim=1)


@dataclass
class ExitOutput:
    """Per video: the probabilities where it stopped, which checkpoint that was, every
    checkpoint's probabilities it reached (NaN after its exit) and, where the model counts
    them, the GMACs it spent (``None`` otherwise)."""

    probs: Tensor  # (B, C)
    exit_index: Tensor  # (B,) long
    checkpoint_probs: Tensor  # (B, K, C)
    gflops: Tensor | None = None  # (B,) float64
