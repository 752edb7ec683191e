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
    be decoded and were left out of this batch.
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

    def __len__(self) -> int:
        return len(self.video_ids)
