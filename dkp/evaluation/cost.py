"""What a video costs: GMACs counted with fvcore on the modules that run, at their input sizes.

The field reports "GFLOPs" that are GMACs (one multiply-add counts once); fvcore counts the
same way. We count the multiply-add operators (convolutions, linear layers, matmuls) and
leave out the element-wise ones fvcore also knows (batch/layer norm, pooling), as the
published backbone figures do. A video's cost is the per-frame cost of each backbone and
classifier times the frames it actually processed, plus the propagation block, propagated
classifier and ensemble traced at that video's actual (n_s, n_t). Each LightningModule gives
its :class:`CostModel` (``module.cost_model()``); an early-exit route's costs are counted in
:mod:`dkp.evaluation.early_exit.cost`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

from dkp.data.annotations.records import VideoRecord
from dkp.data.dataset import as_size
from dkp.data.sampling.frame_times import ClipSampling
from dkp.models.dkp.net import DKPFusion, DKPNet
from dkp.models.frame_net import FrameNet

MAC_OPERATORS = ("conv", "linear", "matmul", "bmm", "einsum", "addmm")


def count_gmacs(module: nn.Module, *inputs: torch.Tensor) -> float:
    """GMACs of one forward pass of ``module`` on ``inputs`` (multiply-add operators only).

    Counted in eval mode; every submodule gets its own mode back afterwards (a wrapper built
    around an eval-mode network must not switch that network to training)."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        with torch.no_grad():
            analysis = FlopCountAnalysis(module, inputs)
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            by_op = analysis.by_operator()
    finally:
        for m, training in modes:
            m.training = training
    return sum(by_op.get(op, 0) for op in MAC_OPERATORS) / 1e9


def frame_gmacs(net: FrameNet, size: int | Sequence[int]) -> float:
    """GMACs of one frame through a frame network's backbone and classifier."""
    height, width = as_size(size)
    device = next(net.parameters()).device
    backbone = count_gmacs(net.backbone, torch.zeros(1, 3, height, width, device=device))
    head = count_gmacs(net.classifier, torch.zeros(1, net.feature_dim, device=device))
    return backbone + head


@dataclass
class CostModel:
    """Per-video GMACs as a function of the frame counts a video gets."""

    student_frame: float = 0.0
    teacher_frame: float = 0.0
    fusion_net: DKPNet | None = None
    _traced: dict[tuple[int, int], float] = field(default_factory=dict, repr=False)

    def fusion(self, n_s: int, n_t: int) -> float:
        """GMACs of propagation, propagated classifier and ensemble for (n_s, n_t) frames."""
        if self.fusion_net is None or n_s == 0 or n_t == 0:
            return 0.0
        if (n_s, n_t) not in self._traced:
            self._traced[n_s, n_t] = self._trace_fusion(n_s, n_t)
        return self._traced[n_s, n_t]

    def _trace_fusion(self, n_s: int, n_t: int) -> float:
        net = self.fusion_net
        device = next(net.parameters()).device
        c = net.student.num_classes

        def zeros(*shape):
            return torch.zeros(*shape, device=device)

        return count_gmacs(
            DKPFusion(net),
            zeros(1, n_s, net.student.feature_dim),
            zeros(1, n_s),
            zeros(1, n_t, net.teacher.feature_dim),
            zeros(1, n_t, c),
            zeros(1, n_t),
        )

    def video(self, n_s: int, n_t: int) -> float:
        """GMACs of one video with ``n_s`` student and ``n_t`` teacher frames."""
        return n_s * self.student_frame + n_t * self.teacher_frame + self.fusion(n_s, n_t)


def frame_counts(records: Iterable[VideoRecord], sampling: ClipSampling) -> np.ndarray:
    """``(V, 2)`` student and teacher frame counts each video gets under ``sampling``."""
    rows = []
    for record in records:
        rows.append(
            [
                sampling.student.count(record.duration) if sampling.student else 0,
                sampling.teacher.count(record.duration) if sampling.teacher else 0,
            ]
        )
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


def video_costs(model: CostModel, counts: np.ndarray) -> np.ndarray:
    """GMACs of every video given its ``(n_s, n_t)`` counts."""
    return np.asarray([model.video(int(s), int(t)) for s, t in counts], dtype=np.float64)
