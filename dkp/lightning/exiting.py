"""The interface of a module that can stop a video early: what exit evaluation relies on.

Two modules implement it: :class:`~dkp.lightning.early_exit.EarlyExitModule` (checkpoints
along a frames x depth route) and :class:`~dkp.lightning.dkp.DKPModule` (dynamic DKP: the
student alone, then the full DKP). Evaluation asks ``isinstance(module, EarlyExiting)``;
nothing else tells the two apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from dkp.data.batch import Batch
from dkp.models.early_exit.policy import ExitOutput, ExitPolicy


@dataclass
class CheckpointScores:
    """Per video of a batch: class probabilities at every checkpoint ``(B, K, C)``, the GMACs
    of stopping at each ``(B, K)`` and the frames seen by then ``(B, K, 2)`` (student,
    teacher). Exits under any thresholds follow from these without running the model again."""

    probs: torch.Tensor
    gflops: np.ndarray
    frames: np.ndarray


@runtime_checkable
class EarlyExiting(Protocol):
    """A module with checkpoints where a video may stop (see the module docstring)."""

    @property
    def exit_series(self) -> str:
        """The default name of its exit curve ("Early exit (ResNet)", "Dynamic DKP", ...)."""
        ...

    @property
    def num_checkpoints(self) -> int: ...

    def checkpoint_scores(self, batch: Batch) -> CheckpointScores:
        """Every checkpoint's probabilities and costs for every video (no stopping)."""
        ...

    def infer(self, batch: Batch, policy: ExitPolicy) -> ExitOutput:
        """Run with real stopping: later checkpoints' work is never done for stopped videos;
        ``gflops`` is what each video cost."""
        ...
