"""Dynamic DKP: the student's frames first, then the teacher's, one step at a time.

Beyond both papers. Checkpoint 0 is the student alone (the mean of its frame probabilities,
as the student-only baseline scores a video); checkpoint ``j`` (1..``steps``) is the full DKP
ensemble over the first ``ceil(j * n / steps)`` of the video's ``n`` teacher frames, added in
coarse-to-fine order (the middle frame, then always the one farthest from those already seen),
so each step covers the video more evenly, or, with a
:class:`~dkp.models.dkp.selector.FrameSelector`, best-scored first and only the best
``limit`` of the sampled candidates. A video stops where the
:class:`~dkp.models.early_exit.policy.ExitPolicy` says; the teacher runs only on the frames a
running video reaches, each once, and the student's features are computed once and reused.
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


def teacher_step_masks(
    teacher_mask: torch.Tensor,
    steps: int,
    scores: torch.Tensor | None = None,
    limit: int | None = None,
) -> torch.Tensor:
    """``(B, steps, N_t)``: the teacher frames each video has seen by step ``j`` (1..steps):
    the first ``ceil(j * n / steps)`` of its ``n`` real frames (at most ``limit``) in
    :func:`coarse_to_fine` order, or in order of ``scores`` ``(B, N_t)`` (highest first; ties
    coarse to fine)."""
    out = torch.zeros(teacher_mask.shape[0], steps, teacher_mask.shape[1], dtype=torch.bool)
    for b, real in enumerate(teacher_mask.cpu()):
        positions = torch.nonzero(real).flatten().tolist()
        ordered = [positions[i] for i in coarse_to_fine(len(positions))]
        if scores is not None:
            row = scores[b].cpu()
            ordered = sorted(ordered, key=lambda i: -float(row[i]))
        ordered = ordered[:limit]
        for j in range(steps):
            out[b, j, ordered[: math.ceil((j + 1) * len(ordered) / steps)]] = True
    return out.to(teacher_mask.device)


def teacher_frames_seen(
    teacher_mask: torch.Tensor, steps: int, limit: int | None = None
) -> torch.Tensor:
    """``(B, steps)``: how many teacher frames each video has seen by each step (the same
    whatever their order)."""
    return teacher_step_masks(teacher_mask, steps, limit=limit).sum(dim=2)


@torch.no_grad()
def dkp_checkpoint_probs(
    net: DKPNet, batch: Batch, steps: int, masks: torch.Tensor | None = None
) -> torch.Tensor:
    """Every checkpoint's video probabilities ``(B, 1 + steps, C)``, every video run to the
    end (what the offline threshold search scores); ``masks`` as :func:`teacher_step_masks`
    gives them (default: coarse to fine over every sampled frame)."""
    student = net.student(batch.student_frames, batch.student_mask)
    teacher = net.teacher(batch.teacher_frames, batch.teacher_mask)
    probs = [masked_mean(student.logits.float().softmax(-1), batch.student_mask)]
    if masks is None:
        masks = teacher_step_masks(batch.teacher_mask, steps)
    for j in range(steps):
        seen = replace(batch, teacher_mask=masks[:, j])
        out = net.fuse(seen, student.features, student.logits, teacher.features, teacher.logits)
        probs.append(out.video_probs.float())
    return torch.stack(probs, dim=1)


@torch.no_grad()
def dynamic_dkp_inference(
    net: DKPNet,
    batch: Batch,
    policy: ExitPolicy,
    plan: Callable[[Batch], torch.Tensor] | None = None,
) -> ExitOutput:
    """Student on every video; then, step by step, the next teacher frames and the fusion for
    the videos ``policy`` has not stopped. ``plan`` gives a batch's step masks (as
    :func:`teacher_step_masks`; default: coarse to fine over every frame) and is run only on
    the videos the student does not stop."""
    steps = policy.num_checkpoints - 1
    if steps < 1:
        raise ValueError("thresholds: dynamic DKP has at least 2 checkpoints, 1 given")
    student = net.student(batch.student_frames, batch.student_mask)
    s_probs = masked_mean(student.logits.float().softmax(-1), batch.student_mask)
    probs = s_probs.clone()
    every = torch.full((len(batch), steps + 1, s_probs.shape[1]), float("nan"))
    every = every.to(s_probs.device)
    every[:, 0] = s_probs
    exit_index = torch.zeros(len(batch), dtype=torch.long)
    running = ~policy.stops(0, s_probs)
    n_t = batch.teacher_mask.shape[1]
    masks = torch.zeros(len(batch), steps, n_t, dtype=torch.bool, device=s_probs.device)
    going = torch.nonzero(running).flatten()
    if len(going):
        sub = batch_rows(batch, going)
        masks[going] = plan(sub) if plan else teacher_step_masks(sub.teacher_mask, steps)
    features = student.features.new_zeros(len(batch), n_t, net.teacher.feature_dim)
    logits = student.logits.new_zeros(len(batch), n_t, net.teacher.num_classes)
    seen = torch.zeros_like(batch.teacher_mask)
    for j in range(1, steps + 1):
        rows = torch.nonzero(running).flatten()
        if not len(rows):
            break
        new = masks[rows, j - 1] & ~seen[rows]
        if new.any():
            teacher = net.teacher(batch.teacher_frames[rows], new)
            features[rows] += teacher.features
            logits[rows] += teacher.logits
            seen[rows] |= new
        sub = replace(batch_rows(batch, rows), teacher_mask=masks[rows, j - 1])
        out = net.fuse(
            sub, student.features[rows], student.logits[rows], features[rows], logits[rows]
        )
        p = out.video_probs.float()
        probs[rows] = every[rows, j] = p
        exit_index[rows.cpu()] = j
        running[rows[policy.stops(j, p)]] = False
    return ExitOutput(probs, exit_index, every)
