"""Dynamic DKP: the student's frames are a first checkpoint; only unsure videos go on to DKP.

Beyond both papers. The student alone (mean of its frame probabilities, as the student-only
baseline scores a video) stops a video when its maximum probability reaches ``threshold``;
the teacher, the propagation block and the ensemble then run only for the videos that go on,
reusing the student features already computed. A stopped video costs its student frames; one
that goes on costs the full DKP video (student + teacher frames + fusion).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from dkp.data.batch import Batch
from dkp.models.dkp import DKPNet
from dkp.models.frame_net import masked_mean


@dataclass
class DynamicDKPOutput:
    """Per video: probabilities where it stopped, 0 (student) or 1 (DKP), and both scores."""

    probs: torch.Tensor  # (B, C)
    exit_index: torch.Tensor  # (B,) long
    student_probs: torch.Tensor  # (B, C)


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
def dynamic_dkp_inference(net: DKPNet, batch: Batch, threshold: float) -> DynamicDKPOutput:
    """Student on every video; teacher + fusion only where the student's confidence is low."""
    student = net.student(batch.student_frames, batch.student_mask)
    s_probs = masked_mean(student.logits.float().softmax(-1), batch.student_mask)
    go_on = s_probs.max(dim=1).values < threshold
    probs = s_probs.clone()
    exit_index = go_on.long().cpu()
    rows = torch.nonzero(go_on).flatten()
    if len(rows):
        sub = batch_rows(batch, rows)
        teacher = net.teacher(sub.teacher_frames, sub.teacher_mask)
        out = net.fuse(
            sub, student.features[rows], student.logits[rows], teacher.features, teacher.logits
        )
        probs[rows] = out.video_probs.float()
    return DynamicDKPOutput(probs, exit_index, s_probs)
