"""Sampling, in two senses kept apart: which moments of a video each network sees
(:mod:`.frame_times`, in seconds) and in which order videos are drawn (:mod:`.batch_order`)."""

from dkp.data.sampling.batch_order import ResumableLoader, ResumableSampler, ShardSampler
from dkp.data.sampling.frame_times import (
    AdaptiveSampler,
    ClipSampling,
    FixedIntervalSampler,
    FrameSampler,
    RatioSampler,
    build_sampling,
    sampling_with,
)

__all__ = [
    "AdaptiveSampler",
    "ClipSampling",
    "FixedIntervalSampler",
    "FrameSampler",
    "RatioSampler",
    "ResumableLoader",
    "ResumableSampler",
    "ShardSampler",
    "build_sampling",
    "sampling_with",
]
