"""Early-exit evaluation: exits from scores, thresholds for a budget, exit-count tables.

Any model that predicts at a sequence of checkpoints fits: the early-exit network (one
checkpoint per route step) and dynamic DKP (student alone, then the full DKP). Its
:class:`ExitScores` hold, for every video, the class probabilities at every checkpoint and
what stopping there costs; exits under any thresholds then follow without running the model
again (the progressive run is tested to give the same exits and probabilities).

Threshold search for a budget: one common threshold ``t`` for every checkpoint but the last
(which always stops). A video stops at the first checkpoint whose maximum probability is
``>= t``, so raising ``t`` can only move exits later and the mean cost never falls as ``t``
grows. The mean cost only changes at the videos' confidence values, so we try those (and
``inf``) and keep the largest ``t`` whose mean cost on the selection set is within the budget:
the most accurate-in-expectation point that meets it on the data it was chosen on.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dkp.evaluation.metrics import hit_at_k, mean_average_precision


@dataclass
class ExitScores:
    """Per video: probabilities ``(V, K, C)`` at each checkpoint, the GMACs of stopping at
    each ``(V, K)``, frames seen by then ``(V, K, 2)`` (student, teacher), targets ``(V, C)``."""

    probs: torch.Tensor
    costs: np.ndarray
    frames: np.ndarray
    target: torch.Tensor
    video_ids: list[str]

    @property
    def num_checkpoints(self) -> int:
        return self.probs.shape[1]

    def confidence(self) -> torch.Tensor:
        """Maximum class probability ``(V, K)`` at every checkpoint."""
        return self.probs.max(dim=2).values


@dataclass
class ExitOutcome:
    """Where each video stopped, with its probabilities, GMACs and frames there."""

    exit_index: np.ndarray  # (V,)
    probs: torch.Tensor  # (V, C)
    gflops: np.ndarray  # (V,)
    frames: np.ndarray  # (V, 2)


def exit_indices(confidence: torch.Tensor, thresholds: Sequence[float]) -> np.ndarray:
    """First checkpoint whose confidence reaches its threshold (the last one always stops)."""
    v, k = confidence.shape
    limits = torch.tensor(list(thresholds), dtype=confidence.dtype).view(1, -1)
    stop = confidence >= limits
    stop[:, -1] = True
    return stop.float().argmax(dim=1).numpy().astype(np.int64)


def exits_for(scores: ExitScores, thresholds: Sequence[float]) -> ExitOutcome:
    """Exits, probabilities and costs of every video under ``thresholds``."""
    index = exit_indices(scores.confidence(), thresholds)
    rows = np.arange(len(index))
    probs = scores.probs[torch.from_numpy(rows), torch.from_numpy(index)]
    return ExitOutcome(index, probs, scores.costs[rows, index], scores.frames[rows, index])


def common(threshold: float, count: int) -> list[float]:
    """The same threshold at every checkpoint."""
    return [float(threshold)] * count


def select_threshold(scores: ExitScores, budget: float) -> tuple[float, float]:
    """The largest common threshold whose mean GMACs on ``scores`` is ``<= budget``; returns
    (threshold, achieved mean GMACs). Raises when even stopping everyone first costs more."""
    k = scores.num_checkpoints
    conf = scores.confidence()[:, :-1].flatten().unique().tolist()
    candidates = sorted({0.0, *conf}) + [float("inf")]

    def mean_cost(t: float) -> float:
        return float(exits_for(scores, common(t, k)).gflops.mean())

    if mean_cost(0.0) > budget * (1 + 1e-12):
        raise ValueError(
            f"budget {budget:.6g} GFLOPs is below the cost of stopping every video at the "
            f"first checkpoint ({mean_cost(0.0):.6g})"
        )
    lo, hi = 0, len(candidates) - 1  # cost(candidates[lo]) <= budget: find the last such
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mean_cost(candidates[mid]) <= budget * (1 + 1e-12):
            lo = mid
        else:
            hi = mid - 1
    return candidates[lo], mean_cost(candidates[lo])


def exit_counts(exit_index: np.ndarray, checkpoints: int) -> list[int]:
    """How many videos stop at each checkpoint."""
    return np.bincount(exit_index, minlength=checkpoints)[:checkpoints].astype(int).tolist()


def outcome_metrics(outcome: ExitOutcome, target: torch.Tensor, prefix: str) -> dict[str, float]:
    """mAP, top-1 and top-5 of the probabilities where videos stopped."""
    probs = outcome.probs.float()
    return {
        f"{prefix}/mAP": mean_average_precision(probs, target),
        f"{prefix}/top1": float(hit_at_k(probs, target, 1).float().mean()),
        f"{prefix}/top5": float(hit_at_k(probs, target, min(5, probs.shape[1])).float().mean()),
    }


def outcome_cost(outcome: ExitOutcome) -> dict[str, float]:
    """Mean GFLOPs (GMACs) per video with spread, and the mean frames seen (as dkp-curves reads)."""
    g = outcome.gflops
    return {
        "gflops": float(g.mean()),
        "gflops_std": float(g.std()),
        "gflops_min": float(g.min()),
        "gflops_max": float(g.max()),
        "frames_student": float(outcome.frames[:, 0].mean()),
        "frames_teacher": float(outcome.frames[:, 1].mean()),
    }


def write_exit_tables(
    rows: Mapping[str, Sequence[int]], out_dir: str | Path, name: str = "exit_counts"
) -> tuple[Path, Path]:
    """The supplement's table: videos stopping at each checkpoint and the total, one row per
    run; as ``<name>.csv`` and ``<name>.md``. Rows may have different checkpoint counts."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    width = max(len(c) for c in rows.values())
    header = ["Checkpoint", *[str(i + 1) for i in range(width)], "Total"]
    table = [
        [label, *[str(n) for n in counts], *["-"] * (width - len(counts)), str(sum(counts))]
        for label, counts in rows.items()
    ]
    csv_path, md_path = out_dir / f"{name}.csv", out_dir / f"{name}.md"
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(table)
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (width + 1) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in table]
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path
