"""Map-style dataset: one video record to the student's and teacher's frames, and the collate."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from dkp.data.annotations.records import VideoRecord
from dkp.data.batch import Batch
from dkp.data.decoding import FrameRequest, VideoDecodeError, VideoReader
from dkp.data.sampling.frame_times import ClipSampling, clip_times
from dkp.data.views import Views, cover_size, three_crops

log = logging.getLogger(__name__)

Size = tuple[int, int]


def as_size(size: int | Sequence[int]) -> Size:
    """``112`` or ``[112, 112]`` to ``(height, width)``."""
    if isinstance(size, int):
        size = (size, size)
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be positive, got {size!r}")
    return height, width


@dataclass
class ClipSample:
    """One decoded video: frames ``(N, H, W, 3)`` uint8 and their times, per network; under
    multi-view testing, its other views (:mod:`dkp.data.views`) in ``extra_views``."""

    video_id: str
    labels: tuple[int, ...]
    duration: float
    student_frames: np.ndarray | None = None
    student_times: np.ndarray | None = None
    teacher_frames: np.ndarray | None = None
    teacher_times: np.ndarray | None = None
    extra_views: list[ClipSample] = field(default_factory=list)


@dataclass
class FailedSample:
    """A video that could not be read; it travels to the collate so the step can report it."""

    video_id: str
    reason: str


class VideoClipDataset(Dataset):
    """Samples times for both networks, then decodes them from the video in one pass.

    Training draws random times from the seed the sampler gives with each index (see
    :mod:`dkp.data.sampling.batch_order`), or from torch's RNG for a bare index; evaluation is
    deterministic. ``hflip`` flips all frames of a video together. ``views`` (evaluation
    only) gives each video several temporal clips and spatial crops (:mod:`dkp.data.views`).
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        sampling: ClipSampling,
        reader: VideoReader,
        student_size: int | Sequence[int] = 112,
        teacher_size: int | Sequence[int] = 224,
        training: bool = False,
        hflip: bool = False,
        views: Views | None = None,
    ) -> None:
        self.views = views or Views()
        if training and self.views.count > 1:
            raise ValueError(f"views: {self.views.label} is for evaluation, not training")
        self.records = list(records)
        self.sampling = sampling
        self.reader = reader
        self.student_size = as_size(student_size)
        self.teacher_size = as_size(teacher_size)
        self.training = training
        self.hflip = hflip

    def __len__(self) -> int:
        return len(self.records)

    def sample_times(self, record: VideoRecord, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The sample times (seconds) of each sampled network for ``record``."""
        times = {}
        for name in ("student", "teacher"):
            sampler = getattr(self.sampling, name)
            if sampler is not None:
                times[name] = sampler(record.duration, self.training, rng)
        return times

    def temporal_clips(
        self, record: VideoRecord, rng: np.random.Generator
    ) -> list[dict[str, np.ndarray]]:
        """The sample times of each temporal clip (one, unless evaluating several views)."""
        if self.training or self.views.clips == 1:
            return [self.sample_times(record, rng)]
        samplers = {n: getattr(self.sampling, n) for n in ("student", "teacher")}
        k = self.views.clips
        return [
            {n: clip_times(s, record.duration, j, k) for n, s in samplers.items() if s is not None}
            for j in range(k)
        ]

    def __getitem__(self, key: int | tuple[int, int]) -> ClipSample | FailedSample:
        """Sample ``key``: an index, or (index, seed) from a :class:`ResumableSampler`."""
        index, seed = key if isinstance(key, tuple) else (key, None)
        record = self.records[index]
        if seed is None:
            seed = int(torch.randint(0, 2**62, ()).item()) if self.training else index
        rng = np.random.default_rng(seed)
        clips = self.temporal_clips(record, rng)
        sizes = {"student": self.student_size, "teacher": self.teacher_size}
        try:
            decoded = dict(sizes)
            if self.views.crops == 3:  # decode the frame covering the size, crop it after
                info = self.reader.probe(record.path)
                decoded = {n: cover_size((info.height, info.width), s) for n, s in sizes.items()}
            requests = [
                FrameRequest(tuple(t.tolist()), *decoded[name])
                for times in clips
                for name, t in times.items()
            ]
            frames = iter(self.reader.read(record.path, requests))
        except VideoDecodeError as err:
            log.warning("skipping video %s: %s", record.video_id, err)
            return FailedSample(record.video_id, str(err))
        flip = self.training and self.hflip and rng.random() < 0.5
        views = []
        for times in clips:
            crops: list[ClipSample] = [
                ClipSample(record.video_id, record.labels, record.duration)
                for _ in range(self.views.crops)
            ]
            for name, t in times.items():
                clip = next(frames)
                parts = three_crops(clip, sizes[name]) if self.views.crops == 3 else [clip]
                for sample, part in zip(crops, parts, strict=True):
                    setattr(sample, f"{name}_frames", part[:, :, ::-1] if flip else part)
                    setattr(sample, f"{name}_times", t.astype(np.float32))
            views += crops
        views[0].extra_views = views[1:]
        return views[0]


def _stack_padded(clips: list[np.ndarray], times: list[np.ndarray]):
    """Pad clips to the longest: frames ``(B, N, 3, H, W)`` uint8, times ``(B, N)``, mask."""
    batch, longest = len(clips), max(len(c) for c in clips)
    height, width = clips[0].shape[1:3]
    frames = torch.zeros(batch, longest, height, width, 3, dtype=torch.uint8)
    stamps = torch.zeros(batch, longest, dtype=torch.float32)
    mask = torch.zeros(batch, longest, dtype=torch.bool)
    for i, (clip, t) in enumerate(zip(clips, times, strict=True)):
        frames[i, : len(clip)] = torch.from_numpy(np.ascontiguousarray(clip))
        stamps[i, : len(t)] = torch.from_numpy(t)
        mask[i, : len(t)] = True
    # A channels-last view: no copy, and convolutions prefer this layout on CPU.
    return frames.permute(0, 1, 4, 2, 3), stamps, mask


def collate_clips(items: list[ClipSample | FailedSample], num_classes: int) -> Batch:
    """Stack decoded samples into a :class:`Batch`; failed ones go to ``Batch.failed``; the
    samples' other views, view by view, into ``Batch.extra_views``."""
    good = [s for s in items if isinstance(s, ClipSample)]
    failed = [(s.video_id, s.reason) for s in items if isinstance(s, FailedSample)]
    batch = _collate(good, num_classes)
    batch.failed = failed
    if good:
        for v in range(len(good[0].extra_views)):
            batch.extra_views.append(_collate([s.extra_views[v] for s in good], num_classes))
    return batch


def _collate(good: list[ClipSample], num_classes: int) -> Batch:
    target = torch.zeros(len(good), num_classes)
    for i, sample in enumerate(good):
        target[i, list(sample.labels)] = 1.0
    batch = Batch(
        target=target,
        duration=torch.tensor([s.duration for s in good], dtype=torch.float32),
        video_ids=[s.video_id for s in good],
    )
    if good:
        for name in ("student", "teacher"):
            if getattr(good[0], f"{name}_frames") is not None:
                frames, times, mask = _stack_padded(
                    [getattr(s, f"{name}_frames") for s in good],
                    [getattr(s, f"{name}_times") for s in good],
                )
                setattr(batch, f"{name}_frames", frames)
                setattr(batch, f"{name}_times", times)
                setattr(batch, f"{name}_mask", mask)
    return batch
