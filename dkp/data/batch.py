"""The batch that flows from the data module into every model."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Batch:
    """Frames and sample times of the student and the teacher for a batch of videos.

    Frames are uint8 ``(B, N, 3, H, W)`` (normalised on the model's device); times are in
    seconds ``(B, N)``; masks are True for real frames and False for padding, which appears
    when fixed-interval sampling gives videos different counts. A network that is not
    sampled has None fields. ``failed`` lists ``(video_id, reason)`` of videos that could not
    be decoded and were left out of this batch. Under multi-view testing
    (:mod:`dkp.data.views`) the batch is the videos' first view and ``extra_views`` holds
    their other views, one batch per view, rows aligned with this one.
    """

    target: torch.Tensor
    duration: torch.Tensor
    video_ids: list[str]
    student_frames: torch.Tensor | None = None
    student_times: torch.Tensor | None = None
    student_mask: torch.Tensor | None = None
    teacher_frames: torch.Tensor | None = None
    teacher_times: torch.Tensor | None = None
    teacher_mask: torch.Tensor | None = None
    failed: list[tuple[str, str]] = field(default_factory=list)
    extra_views: list[Batch] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.video_ids)

    @property
    def num_views(self) -> int:
        """Views of each video in this batch (1 unless multi-view testing)."""
        return 1 + len(self.extra_views)


def stack_views(batch: Batch) -> Batch:
    """Every view of every video as one batch of ``num_views * len(batch)`` rows, view by view
    (row ``v * len(batch) + i`` is view ``v`` of video ``i``), so one pass scores them all;
    frame axes are padded to the longest view (padding masked out, as in collation)."""
    views = [batch, *batch.extra_views]
    stacked = Batch(
        target=torch.cat([v.target for v in views]),
        duration=torch.cat([v.duration for v in views]),
        video_ids=[vid for v in views for vid in v.video_ids],
        failed=list(batch.failed),
    )
    for name in ("student", "teacher"):
        frames = [getattr(v, f"{name}_frames") for v in views]
        if frames[0] is None:
            continue
        longest = max(f.shape[1] for f in frames)
        masks = [getattr(v, f"{name}_mask") for v in views]
        masks = [
            torch.ones(f.shape[:2], dtype=torch.bool, device=f.device) if m is None else m
            for f, m in zip(frames, masks, strict=True)
        ]
        times = [getattr(v, f"{name}_times") for v in views]
        for part, tensors in (("frames", frames), ("times", times), ("mask", masks)):
            setattr(stacked, f"{name}_{part}", torch.cat([_pad(t, longest) for t in tensors]))
    return stacked


def _pad(values: torch.Tensor, length: int) -> torch.Tensor:
    """``values`` ``(B, N, ...)`` padded with zeros (False) to ``length`` along the frame axis."""
    if values.shape[1] == length:
        return values
    padded = values.new_zeros(values.shape[0], length, *values.shape[2:])
    padded[:, : values.shape[1]] = values
    return padded
