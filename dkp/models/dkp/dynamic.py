"""Dynamic DKP: the student's frames are a first checkpoint; only unsure videos go on to DKP.

Beyond both papers. The student alone (mean of its frame probabilities, as the student-only
baseline scores a video) is checkpoint 0, the full DKP ensemble checkpoint 1; a video stops
where the :class:`~dkp.models.early_exit.policy.ExitPolicy` says. The teacher, the propagation
block and the ensemble run only for the videos that go on, reusing the student features
already computed.
"""

from __future__ import annotations

from dataclasses import fields

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


@torch.no_grad()
def dynamic_dkp_inference(net: DKPNet, batch: Batch, policy: ExitPolicy) -> ExitOutput:
    """Student on every video; teacher + fusion only for the videos ``policy`` does not stop
    at the student."""
    if policy.num_checkpoints != 2:
        given = policy.num_checkpoints
        raise ValueError(f"thresholds: dynamic DKP has 2 checkpoints, {given} given")
    student = net.student(batch.student_frames, batch.student_mask)
    s_probs = masked_mean(student.logits.float().softmax(-1), batch.student_mask)
    go_on = ~policy.stops(0, s_probs)
    probs = s_probs.clone()
    every = torch.full((len(batch), 2, s_probs.shape[1]), float("nan"), device=s_probs.device)
    every[:, 0] = s_probs
    rows = torch.nonzero(go_on).flatten()
    if len(rows):
        sub = batch_rows(batch, rows)
        teacher = net.teacher(sub.teacher_frames, sub.teacher_mask)
        out = net.fuse(
            sub, student.features[rows], student.logits[rows], teacher.features, teacher.logits
        )
        probs[rows] = every[rows, 1] = out.video_probs.float()
    return ExitOutput(probs, go_on.long().cpu(), every)
