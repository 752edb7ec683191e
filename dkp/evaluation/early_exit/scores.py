"""Exits from scores: where videos stop under any thresholds, and thresholds for a budget.

Any :class:`~dkp.lightning.exiting.EarlyExiting` module fits: its :class:`ExitScores` hold,
for every video, the class probabilities at every checkpoint and what stopping there costs;
exits under any :class:`~dkp.models.early_exit.policy.ExitPolicy` then follow without running
the model again (the progressive run is tested to give the same exits and probabilities).

Threshold search for a budget: one common threshold ``t`` for every checkpoint but the last
(which always stops). A video stops at the first checkpoint whose maximum probability is
``>= t``, so raising ``t`` can only move exits later and the mean cost never falls as ``t``
grows. The mean cost only changes at the videos' confidence values, so we try those (and
``inf``) and keep the largest ``t`` whose mean cost on the selection set is within the budget:
the most accurate-in-expectation point that meets it on the data it was chosen on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dkp.data.batch import Batch
from dkp.evaluation.metrics import hit_at_k, mean_average_precision
from dkp.lightning.exiting import EarlyExiting
from dkp.models.early_exit.policy import ExitPolicy, StopScore, max_probability
from dkp.runtime.results import CostSummary


@dataclass
class ExitScores:
    """Per video: probabilities ``(V, K, C)`` at each checkpoint, the GMACs of stopping at
    each ``(V, K)``, frames seen by then ``(V, K, 2)`` (student, teacher), targets ``(V, C)``."""

    probs: torch.Tensor
    gflops: np.ndarray
    frames: np.ndarray
    target: torch.Tensor
    video_ids: list[str]

    @classmethod
    @torch.no_grad()
    def of(cls, module: EarlyExiting, batches: Sequence[Batch]) -> ExitScores:
        """Every checkpoint's scores of ``module`` (in eval mode) on ``batches``."""
        module.eval()
        parts = [module.checkpoint_scores(b) for b in batches]
        return cls(
            torch.cat([p.probs for p in parts]),
            np.concatenate([p.gflops for p in parts]),
            np.concatenate([p.frames for p in parts]),
            torch.cat([b.target for b in batches]),
            [vid for b in batches for vid in b.video_ids],
        )

    @property
    def num_checkpoints(self) -> int:
        return self.probs.shape[1]

    def checkpoint_gflops(self) -> list[float]:
        """Mean GMACs per video of stopping every video at each checkpoint (the last one's:
        the full model's)."""
        return [float(self.gflops[:, k].mean()) for k in range(self.num_checkpoints)]

    def right(self) -> torch.Tensor:
        """Whether each checkpoint's top class is one of the video's labels ``(V, K)``."""
        top = self.probs.argmax(dim=2)
        return self.target.gather(1, top) > 0

    def exits(self, policy: ExitPolicy) -> ExitOutcome:
        """Where every video stops under ``policy``, with its probabilities and costs there."""
        return self.outcome_at(policy.exits(self.probs).numpy())

    def oracle(self) -> ExitOutcome:
        """Where a stopping rule that knew the labels would stop each video: at its first
        checkpoint whose top class is right, else at the last. No rule can be right as often
        for less, so its cost is the floor for any policy on these checkpoints."""
        right = self.right().numpy()
        k = self.num_checkpoints
        return self.outcome_at(np.where(right.any(1), right.argmax(1), k - 1))

    def outcome_at(self, index: np.ndarray) -> ExitOutcome:
        """The outcome of stopping video ``v`` at checkpoint ``index[v]``."""
        index = np.asarray(index, np.int64)
        rows = np.arange(len(index))
        probs = self.probs[torch.from_numpy(rows), torch.from_numpy(index)]
        return ExitOutcome(index, probs, self.gflops[rows, index], self.frames[rows, index])

    def select_threshold(
        self, budget: float, score: StopScore = max_probability
    ) -> tuple[float, float]:
        """The largest common threshold on ``score`` whose mean GMACs on these videos is
        ``<= budget``; returns (threshold, achieved mean GMACs). Raises when even stopping
        every video at the first checkpoint costs more."""
        k = self.num_checkpoints
        conf = torch.cat([score(j, self.probs[:, j]) for j in range(k - 1)]).unique().tolist()
        candidates = sorted({min(0.0, *conf), *conf}) + [float("inf")]

        def mean_cost(t: float) -> float:
            return float(self.exits(ExitPolicy.of(t, k, score)).gflops.mean())

        if mean_cost(candidates[0]) > budget * (1 + 1e-12):
            raise ValueError(
                f"budget {budget:.6g} GFLOPs is below the cost of stopping every video at the "
                f"first checkpoint ({mean_cost(candidates[0]):.6g})"
            )
        lo, hi = 0, len(candidates) - 1  # cost(candidates[lo]) <= budget: find the last such
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if mean_cost(candidates[mid]) <= budget * (1 + 1e-12):
                lo = mid
            else:
                hi = mid - 1
        return candidates[lo], mean_cost(candidates[lo])


@dataclass
class ExitOutcome:
    """Where each video stopped, with its probabilities, GMACs and frames there."""

    exit_index: np.ndarray  # (V,)
    probs: torch.Tensor  # (V, C)
    gflops: np.ndarray  # (V,)
    frames: np.ndarray  # (V, 2)

    def counts(self, checkpoints: int) -> list[int]:
        """How many videos stop at each checkpoint."""
        counts = np.bincount(self.exit_index, minlength=checkpoints)[:checkpoints]
        return counts.astype(int).tolist()

    def cost(self) -> CostSummary:
        return CostSummary.of(self.gflops, self.frames)

    def metrics(self, target: torch.Tensor, prefix: str) -> dict[str, float]:
        """mAP, top-1 and top-5 of the probabilities where videos stopped."""
        probs = self.probs.float()
        return {
            f"{prefix}/mAP": mean_average_precision(probs, target),
            f"{prefix}/top1": float(hit_at_k(probs, target, 1).float().mean()),
            f"{prefix}/top5": float(hit_at_k(probs, target, min(5, probs.shape[1])).float().mean()),
        }
