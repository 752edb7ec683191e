"""Dynamic DKP: the student's frames first, then the teacher's, one step at a time.

Beyond both papers. Checkpoints ``0..S-1`` are the student alone (the mean of its frame
probabilities, as the student-only baseline scores a video) over the first ``ceil(j * n / S)``
of its ``n`` frames, added coarse to fine (the middle frame, then always the one farthest from
those already seen), so an easy video stops after a few cheap frames; the next ``steps``
checkpoints are the full DKP ensemble over all the student's frames and more and more of the
teacher's, added coarse to fine too or, with a
:class:`~dkp.models.dkp.selector.FrameSelector`, best-scored first and only the best
``limit`` of the sampled candidates. A video stops where the
:class:`~dkp.models.early_exit.policy.ExitPolicy` says; each network runs only on the frames a
running video reaches, each frame once, and the student's features are reused by the fusion.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields, replace

import torch

from dkp.data.batch import Batch
from dkp.models.dkp.net import DKPNet
from dkp.models.early_exit.policy import ExitOutput, ExitPolicy
from dkp.models.frame_net import masked_mean


def batch_rows(batch: Batch, rows: torch.Tensor) -> Batch:
    """The videos ``rows`` of a batch (every per-video tensor and list indexed alike)."""
    values = {}
    for f in fields(Batch):
        value = getattr(batch, f.name)
        if isinstance(value, torch.Tensor):
            value = value[rows.to(value.device)]
        elif f.name == "video_ids":
            value = [value[i] for i in rows.tolist()]
        values[f.name] = value
    return Batch(**values)


def coarse_to_fine(count: int) -> list[int]:
    """Positions ``0..count-1`` in the order a growing subset covers them most evenly: the
    middle one, then always the one farthest from every position taken (the earliest on ties)."""
    if count <= 0:
        return []
    order = [(count - 1) // 2]
    while len(order) < count:
        gaps = [min(abs(i - j) for j in order) if i not in order else -1 for i in range(count)]
        order.append(max(range(count), key=lambda i: (gaps[i], -i)))
    return order


def step_masks(
    mask: torch.Tensor,
    steps: int,
    scores: torch.Tensor | None = None,
    limit: int | None = None,
) -> torch.Tensor:
    """``(B, steps, N)``: the frames of ``mask`` ``(B, N)`` (a student's or a teacher's) each
    video has seen by step ``j`` (1..steps): the first ``ceil(j * n / steps)`` of its ``n`` real
    frames (at most ``limit``) in :func:`coarse_to_fine` order, or in order of ``scores``
    ``(B, N)`` (highest first; ties coarse to fine)."""
    out = torch.zeros(mask.shape[0], steps, mask.shape[1], dtype=torch.bool)
    for b, real in enumerate(mask.cpu()):
        positions = torch.nonzero(real).flatten().tolist()
        ordered = [positions[i] for i in coarse_to_fine(len(positions))]
        if scores is not None:
            row = scores[b].cpu()
            ordered = sorted(ordered, key=lambda i: -float(row[i]))
        ordered = ordered[:limit]
        for j in range(steps):
            out[b, j, ordered[: math.ceil((j + 1) * len(ordered) / steps)]] = True
    return out.to(mask.device)


def frames_seen(mask: torch.Tensor, steps: int, limit: int | None = None) -> torch.Tensor:
    """``(B, steps)``: how many frames of ``mask`` each video has seen by each step (the same
    whatever their order)."""
    return step_masks(mask, steps, limit=limit).sum(dim=2)


@torch.no_grad()
def dkp_checkpoint_probs(
    net: DKPNet,
    batch: Batch,
    steps: int,
    masks: torch.Tensor | None = None,
    student_steps: int = 1,
) -> torch.Tensor:
    """Every checkpoint's video probabilities ``(B, student_steps + steps, C)``, every video
    run to the end (what the offline threshold search scores); ``masks`` as :func:`step_masks`
    gives them for the teacher (default: coarse to fine over every sampled frame)."""
    student = net.student(batch.student_frames, batch.student_mask)
    teacher = net.teacher(batch.teacher_frames, batch.teacher_mask)
    frame_probs = student.logits.float().softmax(-1)
    seen = step_masks(batch.student_mask, student_steps)
    probs = [masked_mean(frame_probs, seen[:, j]) for j in range(student_steps)]
    if masks is None:
        masks = step_masks(batch.teacher_mask, steps)
    for j in range(steps):
        fused = replace(batch, teacher_mask=masks[:, j])
        out = net.fuse(fused, student.features, student.logits, teacher.features, teacher.logits)
        probs.append(out.video_probs.float())
    return torch.stack(probs, dim=1)


@torch.no_grad()
def dynamic_dkp_inference(
    net: DKPNet,
    batch: Batch,
    policy: ExitPolicy,
    plan: Callable[[Batch], torch.Tensor] | None = None,
    student_steps: int = 1,
) -> ExitOutput:
    """The student's frames in ``student_steps`` steps, then, step by step, the next teacher
    frames and the fusion, each step only for the videos ``policy`` has not stopped. ``plan``
    gives a batch's teacher step masks (as :func:`step_masks`; default: coarse to fine over
    every frame) and is run only on the videos the student does not stop."""
    steps = policy.num_checkpoints - student_steps
    if student_steps < 1 or steps < 1:
        raise ValueError(
            f"thresholds: dynamic DKP has {student_steps} student checkpoints and at least 1 "
            f"teacher checkpoint, {policy.num_checkpoints} given"
        )
    videos, num_classes = len(batch), net.student.num_classes
    every = torch.full((videos, policy.num_checkpoints, num_classes), float("nan"))
    every = every.to(batch.student_frames.device)
    probs = every[:, 0].clone()
    exit_index = torch.zeros(videos, dtype=torch.long)
    running = torch.ones(videos, dtype=torch.bool, device=every.device)

    def checkpoint(k: int, rows: torch.Tensor, p: torch.Tensor) -> None:
        probs[rows] = every[rows, k] = p
        exit_index[rows.cpu()] = k
        running[rows[policy.stops(k, p)]] = False

    s_masks = step_masks(batch.student_mask, student_steps)
    s_seen = torch.zeros_like(batch.student_mask)
    for j in range(student_steps):
        rows = torch.nonzero(running).flatten()
        if not len(rows):
            break
        new = s_masks[rows, j] & ~s_seen[rows]
        if j == 0:  # every video runs the first step: it fixes the shapes and dtypes
            student = net.student(batch.student_frames, new)
            s_features, s_logits = student.features, student.logits
        elif new.any():
            student = net.student(batch.student_frames[rows], new)
            s_features[rows] += student.features
            s_logits[rows] += student.logits
        s_seen[rows] |= new
        frame_probs = s_logits[rows].float().softmax(-1)
        checkpoint(j, rows, masked_mean(frame_probs, s_masks[rows, j]))
    n_t = batch.teacher_mask.shape[1]
    masks = torch.zeros(videos, steps, n_t, dtype=torch.bool, device=every.device)
    going = torch.nonzero(running).flatten()
    if len(going):
        sub = batch_rows(batch, going)
        masks[going] = plan(sub) if plan else step_masks(sub.teacher_mask, steps)
    t_features = s_features.new_zeros(videos, n_t, net.teacher.feature_dim)
    t_logits = s_logits.new_zeros(videos, n_t, num_classes)
    t_seen = torch.zeros_like(batch.teacher_mask)
    for j in range(1, steps + 1):
        rows = torch.nonzero(running).flatten()
        if not len(rows):
            break
        new = masks[rows, j - 1] & ~t_seen[rows]
        if new.any():
            teacher = net.teacher(batch.teacher_frames[rows], new)
            t_features[rows] += teacher.features
            t_logits[rows] += teacher.logits
            t_seen[rows] |= new
        sub = replace(batch_rows(batch, rows), teacher_mask=masks[rows, j - 1])
        out = net.fuse(sub, s_features[rows], s_logits[rows], t_features[rows], t_logits[rows])
        checkpoint(student_steps - 1 + j, rows, out.video_probs.float())
    return ExitOutput(probs, exit_index, every)
