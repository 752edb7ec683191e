"""Which teacher frame dynamic DKP should run first: a tiny CNN that finds the action.

Beyond both papers. In an untrimmed video the action may fill a few seconds of a minute, and
dynamic DKP's saving rests on its first teacher frame landing there (one frame in the action
is worth more than four spread over the video). The student cannot point at it: trained on
the video's label alone (through the mean of its frame logits), it does not tell action frames
from background ones. :class:`FrameSelector` is trained for exactly that, on frames at the
student's resolution labelled "inside an annotated action segment", and costs a small
fraction of a student frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from dkp.data.batch import Batch
from dkp.data.dataset import as_size
from dkp.evaluation.cost import count_gmacs


class FrameSelector(nn.Module):
    """Three strided 3x3 convolutions, max-pooled over space (the action is somewhere in the
    frame), to a logit per frame: frames ``(..., 3, H, W)`` (uint8 or in [0, 255]) -> ``(...)``."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"frame_selector.width: at least 1, got {width}")

        def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True)]  # fmt: skip

        self.features = nn.Sequential(
            *block(3, width, 2), *block(width, 2 * width, 2), *block(2 * width, 2 * width, 1),
            nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        )  # fmt: skip
        self.classifier = nn.Linear(2 * width, 1)

    def forward(self, frames: Tensor) -> Tensor:
        lead = frames.shape[:-3]
        x = frames.reshape(-1, *frames.shape[-3:]).float() / 127.5 - 1.0
        return self.classifier(self.features(x)).reshape(lead)

    def frame_gmacs(self, size: int | Sequence[int]) -> float:
        """GMACs of scoring one frame of ``size`` (the student's input size)."""
        return count_gmacs(self, torch.zeros(1, 3, *as_size(size)))

    @torch.no_grad()
    def candidate_scores(self, batch: Batch) -> Tensor:
        """A score ``(B, N_t)`` per teacher frame of ``batch``, from the student frame nearest
        it in time (already decoded, at the student's resolution)."""
        near = nearest_frames(batch.teacher_times, batch.student_times, batch.student_mask)
        rows = torch.arange(len(batch), device=near.device)[:, None]
        return self(batch.student_frames[rows, near])

    @classmethod
    def fit(
        cls,
        frames: Tensor,
        inside: Tensor,
        width: int = 4,
        epochs: int = 10,
        batch_size: int = 64,
        seed: int = 0,
    ) -> FrameSelector:
        """Trained on frames ``(N, 3, H, W)`` and whether each is inside an action ``(N,)``
        (AdamW, horizontal flips, a fixed seed), returned in eval mode."""
        if len(frames) == 0 or inside.all() or not inside.any():
            raise ValueError(
                "frame_selector: needs frames both inside and outside annotated actions "
                f"({int(inside.sum())} of {len(inside)} inside)"
            )
        generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            selector = cls(width)
        optimizer = torch.optim.AdamW(selector.parameters(), lr=3e-3, weight_decay=1e-3)
        target = inside.float()
        selector.train()
        with torch.enable_grad():
            for _ in range(epochs):
                order = torch.randperm(len(frames), generator=generator)
                for start in range(0, len(frames), batch_size):
                    rows = order[start : start + batch_size]
                    x = frames[rows]
                    if torch.rand(1, generator=generator) < 0.5:
                        x = x.flip(-1)
                    loss = nn.functional.binary_cross_entropy_with_logits(selector(x), target[rows])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
        return selector.eval()


def inside_segments(times: Tensor, segments: Sequence[tuple[float, float]]) -> Tensor:
    """Whether each time ``(N,)`` (seconds) lies inside one of the ``segments``."""
    inside = torch.zeros(times.shape, dtype=torch.bool)
    for start, end in segments:
        inside |= (times >= start) & (times <= end)
    return inside


def nearest_frames(times: Tensor, reference: Tensor, reference_mask: Tensor) -> Tensor:
    """For each time ``(B, N)``, the index ``(B, N)`` of the nearest real reference frame
    (``reference`` times ``(B, M)``, ``reference_mask`` ``(B, M)``)."""
    gap = (times[:, :, None] - reference[:, None, :]).abs()
    return gap.masked_fill(~reference_mask[:, None, :], float("inf")).argmin(dim=-1)
