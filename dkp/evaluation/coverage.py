"""How often a sampling strategy puts a frame inside an annotated action, at what cost.

A model-free check of a sampling strategy on a dataset with temporal annotations (ActivityNet
``segments``): a network whose frames all miss the action cannot recognise it, so the share of
videos with at least one evaluation-time frame inside an annotated segment bounds what that
network can do. Comparing strategies at equal mean cost tells whether the data favour a fixed
count per video (adaptive) or a fixed spacing (fixed-interval) before anything is trained.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from dkp.data.annotations.records import VideoRecord
from dkp.data.sampling.frame_times import ClipSampling, FrameSampler
from dkp.evaluation.cost import CostModel, frame_counts, video_costs


def hits_action(sampler: FrameSampler, record: VideoRecord) -> bool:
    """Whether any of the sampler's evaluation-time frames falls inside an annotated segment."""
    times = sampler(record.duration, training=False, rng=np.random.default_rng(0))
    return any(((times >= a) & (times < b)).any() for a, b in record.segments)


def segment_coverage(
    records: Iterable[VideoRecord], sampling: ClipSampling, model: CostModel
) -> dict[str, float]:
    """Mean GMACs per video and the share of videos (%) where each stream sees the action.

    Only videos with annotated segments count; ``ValueError`` if there are none.
    """
    annotated = [r for r in records if r.segments]
    if not annotated:
        raise ValueError("segment_coverage: no video has annotated segments")
    out = {"gflops": float(video_costs(model, frame_counts(annotated, sampling)).mean())}
    for name in ("student", "teacher"):
        sampler = getattr(sampling, name)
        if sampler is not None:
            out[name] = 100.0 * float(np.mean([hits_action(sampler, r) for r in annotated]))
    return out
