"""How often a sampling strategy puts a frame inside an annotated action, at what cost.

A model-free check of a sampling strategy on a dataset with temporal annotations (ActivityNet
``segments``): a network whose frames all miss the action cannot recognise it, so the share of
videos with at least one evaluation-time frame inside an annotated segment bounds what that
network can do. Comparing strategies at equal mean cost tells whether the data favour a fixed
count per video (adaptive) or a fixed spacing (fixed-interval) before anything is trained.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dkp.data.annotations.records import VideoRecord
from dkp.data.sampling.frame_times import ClipSampling, FrameSampler
from dkp.evaluation.cost import CostModel, frame_counts, video_costs


def hits_action(sampler: FrameSampler, record: VideoRecord) -> bool:
    """Whether any of the sampler's evaluation-time frames falls inside an annotated segment."""
    times = sampler(record.duration, training=False, rng=np.random.default_rng(0))
    return any(((times >= a) & (times < b)).any() for a, b in record.segments)


@dataclass(frozen=True)
class Coverage:
    """A sampling on annotated videos: mean GMACs per video, and per stream whether each
    video's frames hit its action (per video, so the share can be bootstrapped)."""

    gflops: float
    hits: dict[str, np.ndarray]  # stream -> (V,): 1.0 where it sees the action, else 0.0

    @property
    def videos(self) -> int:
        """How many annotated videos it counts (the length of each ``hits``)."""
        return len(next(iter(self.hits.values())))

    def share(self, stream: str) -> float:
        """Percent of the videos where ``stream`` sees the action."""
        return 100.0 * float(self.hits[stream].mean())

    def shares(self, stream: str, weights: np.ndarray) -> np.ndarray:
        """The share (%) under each row of video ``weights`` ``(B, V)``, e.g. bootstrap
        replicates: ``(B,)``."""
        weights = np.atleast_2d(weights)
        return 100.0 * (weights @ self.hits[stream]) / weights.sum(axis=1)


def segment_coverage(
    records: Iterable[VideoRecord], sampling: ClipSampling, model: CostModel
) -> Coverage:
    """The sampling's mean GMACs per video and, for each of its streams, which videos it sees
    the action of. Only videos with annotated segments count; ``ValueError`` if there are none.
    """
    annotated = [r for r in records if r.segments]
    if not annotated:
        raise ValueError("segment_coverage: no video has annotated segments")
    gflops = float(video_costs(model, frame_counts(annotated, sampling)).mean())
    hits = {
        name: np.array([hits_action(sampler, r) for r in annotated], dtype=np.float64)
        for name in ("student", "teacher")
        if (sampler := getattr(sampling, name)) is not None
    }
    return Coverage(gflops, hits)
