"""Video-level metrics over a whole evaluation set, as torchmetrics (synced across processes).

mAP is the efficient-recognition convention: the scores of every class for every video; per
class the non-interpolated average precision over the whole set (exact, in float64, as
scikit-learn computes it); the mean over classes.
Classes with no positive video in the set are left out of the mean (their AP is undefined),
and ``num_classes_scored`` says how many counted. Top-k is hit@k: a video counts as correct
when any of its labels is among the k highest scores (the same as top-k accuracy for
single-label videos).
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from dkp.evaluation.average_precision import average_precision


def average_precision_per_class(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Non-interpolated AP of each class ``(C,)`` in float64 (:func:`average_precision`);
    NaN for classes without positives. ``scores`` and ``target`` are ``(N, C)``, or ``(N,)``
    for one class."""
    scores = scores.detach().to("cpu", torch.float64).numpy()
    positive = target.detach().cpu().numpy() > 0
    if scores.ndim == 1:
        scores, positive = scores[:, None], positive[:, None]
    if scores.shape[0] == 0:
        return torch.full(scores.shape[1:], float("nan"), dtype=torch.float64)
    ones = np.ones((1, scores.shape[0]))
    ap = [average_precision(scores[:, c], positive[:, c], ones)[0] for c in range(scores.shape[1])]
    return torch.tensor(ap, dtype=torch.float64)


def mean_average_precision(scores: torch.Tensor, target: torch.Tensor) -> float:
    """Mean of per-class AP over classes that have at least one positive video."""
    ap = average_precision_per_class(scores, target)
    scored = ~ap.isnan()
    return float(ap[scored].mean()) if scored.any() else float("nan")


def hit_at_k(scores: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    """Per video: 1.0 when one of its labels is among the ``k`` highest scores."""
    top = scores.topk(min(k, scores.shape[1]), dim=1).indices
    return target.gather(1, top).amax(dim=1).float()


class VideoMAP(Metric):
    """Macro non-interpolated mAP over the whole evaluation set (see module docstring)."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, scores: torch.Tensor, target: torch.Tensor) -> None:
        self.scores.append(scores.detach())  # as given: float64 stays float64
        self.target.append(target.detach().float())

    def compute(self) -> torch.Tensor:
        # A list of batches in one process; one tensor once synced across processes.
        if isinstance(self.scores, list) and not self.scores:
            return torch.tensor(float("nan"))
        scores, target = dim_zero_cat(self.scores), dim_zero_cat(self.target)
        return torch.tensor(mean_average_precision(scores, target))


class TopKHit(Metric):
    """hit@k accuracy over the evaluation set (top-1 accuracy for single-label videos)."""

    full_state_update = False
    higher_is_better = True

    def __init__(self, k: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.k = k
        self.add_state("hits", default=torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", default=torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, scores: torch.Tensor, target: torch.Tensor) -> None:
        labelled = target.sum(1) > 0
        self.hits += hit_at_k(scores[labelled], target[labelled], self.k).sum()
        self.total += labelled.sum()

    def compute(self) -> torch.Tensor:
        return self.hits / self.total.clamp_min(1.0)
