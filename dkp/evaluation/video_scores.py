"""Per-video scores of an evaluation: every class's probability, the targets and the cost.

A set-level metric (mAP, top-1) and its bootstrap interval are computed from these; an
evaluation leaves them beside its ``results.json`` as ``scores.npz``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dkp.runtime.atomic import write_atomic

SCORES_FILE = "scores.npz"


@dataclass
class VideoScores:
    """Every scored video's class probabilities ``(V, C)``, multi-hot targets ``(V, C)`` and
    GMACs ``(V,)``: what a set-level metric and its bootstrap interval are computed from."""

    video_ids: np.ndarray
    probs: np.ndarray
    target: np.ndarray
    gflops: np.ndarray

    def aligned(self, video_ids: Sequence[str]) -> VideoScores:
        """The rows of ``video_ids``, in that order (KeyError naming a missing video)."""
        where = {vid: i for i, vid in enumerate(self.video_ids.tolist())}
        rows = np.asarray([where[vid] for vid in video_ids], np.int64)
        ids = np.asarray(list(video_ids))
        return VideoScores(ids, self.probs[rows], self.target[rows], self.gflops[rows])


def write_scores(path: str | Path, scores: VideoScores) -> Path:
    """``scores`` as an ``.npz`` (atomically)."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        video_ids=np.asarray(scores.video_ids, dtype=str),
        probs=np.asarray(scores.probs, np.float32),
        target=np.asarray(scores.target, np.uint8),
        gflops=np.asarray(scores.gflops, np.float64),
    )
    return write_atomic(path, buffer.getvalue())


def read_scores(path: str | Path) -> VideoScores:
    """The :class:`VideoScores` :func:`write_scores` wrote (no pickled objects allowed)."""
    with np.load(path, allow_pickle=False) as data:
        return VideoScores(data["video_ids"], data["probs"], data["target"], data["gflops"])
