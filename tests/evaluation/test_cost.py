"""GFLOPs (GMACs) per video against hand-computed numbers and the cited DKP figure."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from dkp.data.annotations.records import VideoRecord
from dkp.data.sampling import build_sampling
from dkp.evaluation.cost import CostModel, frame_counts, frame_gmacs, video_costs
from dkp.models.backbones import build_backbone
from dkp.models.dkp import DKPNet
from dkp.models.frame_net import FrameNet
from dkp.runtime.results import CostSummary


class PixelConv(nn.Module):
    """A backbone whose cost is easy to count: a 1x1 conv 3->k, then global pooling."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, k, 1)
        self.out_dim = k

    def forward(self, x):
        return self.conv(x).mean(dim=(2, 3))


def test_frame_cost_by_hand():
    net = FrameNet(PixelConv(4), num_classes=7)
    # conv: 10*12 pixels x 3 in x 4 out; classifier: 4 x 7
    assert frame_gmacs(net, (10, 12)) * 1e9 == pytest.approx(10 * 12 * 3 * 4 + 4 * 7)


def test_fusion_cost_by_hand():
    d_s, d_t, c, d, hidden, ff = 4, 6, 7, 8, 5, 2.0
    net = DKPNet(
        FrameNet(PixelConv(d_s), c),
        FrameNet(PixelConv(d_t), c),
        propagation={"dim": d, "heads": 2, "ff_mult": ff},
        ensemble={"hidden": hidden},
    )
    n_s, n_t = 5, 3
    h = int(d * ff)
    expected = (
        n_s * d_s * d  # student projection
        + n_t * d_t * d  # teacher projection
        + n_s * d * d  # queries
        + 2 * n_t * d * d  # keys, values
        + 2 * n_s * n_t * d  # scores and weighted sum, over all heads
        + n_s * d * d  # attention output projection
        + n_s * (d * h + h * d)  # feed-forward
        + n_s * d * c  # propagated classifier
        + n_s * ((d + 4) * hidden + hidden)  # ensemble gate
        + n_s * n_t * c  # teacher probabilities attended at each student frame
    )
    model = CostModel(student_frame=0.0, teacher_frame=0.0, fusion_net=net)
    assert model.fusion(n_s, n_t) * 1e9 == pytest.approx(expected)
    assert model.video(n_s, n_t) == model.fusion(n_s, n_t)
    assert model.fusion(n_s, 0) == 0.0


@pytest.mark.parametrize("training", [False, True])
def test_counting_leaves_every_module_in_its_mode(training):
    """Costs are counted in eval mode, then each submodule gets its own mode back: counting
    a network in eval mode (e.g. before scoring it) must not switch its batch norm and
    dropout to training."""
    net = DKPNet(
        FrameNet(build_backbone("resnet18", base_width=8), 5),
        FrameNet(build_backbone("resnet18", base_width=8), 5),
        propagation={"dim": 8, "heads": 2},
    ).train(training)
    net.teacher.eval()  # a mixed state must come back as it was, too
    before = {name: m.training for name, m in net.named_modules()}
    model = CostModel(frame_gmacs(net.student, 32), frame_gmacs(net.teacher, 32), fusion_net=net)
    assert model.video(4, 2) > 0
    assert {name: m.training for name, m in net.named_modules()} == before


def test_paper_scale_dkp_matches_the_cited_30_5_gflops():
    # Student ResNet-18 at 112, teacher ResNet-50 at 224, n_s = 20, n_t = 5, 200 classes.
    student = FrameNet(build_backbone("resnet18"), 200)
    teacher = FrameNet(build_backbone("resnet50"), 200)
    net = DKPNet(student, teacher, propagation={"dim": 256, "heads": 4}, ensemble={"hidden": 64})
    model = CostModel(frame_gmacs(student, 112), frame_gmacs(teacher, 224), net)
    assert model.student_frame == pytest.approx(0.4853 + 512 * 200 / 1e9, rel=1e-3)
    assert model.teacher_frame == pytest.approx(4.0892 + 2048 * 200 / 1e9, rel=1e-3)
    total = model.video(20, 5)
    assert abs(total - 30.5) / 30.5 < 0.05, total


def test_costs_follow_each_videos_frame_counts():
    records = [
        VideoRecord(str(i), None, d, (), "validation") for i, d in enumerate((4.0, 20.0, 61.0))
    ]
    fixed = build_sampling("fixed", r_t=8.0, ratio=4)
    counts = frame_counts(records, fixed)
    # n_t = max(1, round(duration / 8)), halves rounding up (20/8 = 2.5 -> 3); n_s = 4 n_t
    np.testing.assert_array_equal(counts, [[4, 1], [12, 3], [32, 8]])
    model = CostModel(student_frame=1.0, teacher_frame=10.0)
    costs = video_costs(model, counts)
    np.testing.assert_allclose(costs, [14.0, 42.0, 112.0])
    summary = CostSummary.of(costs, counts)
    assert summary.gflops == pytest.approx(168 / 3)
    assert summary.gflops_min == 14.0 and summary.gflops_max == 112.0
    assert summary.gflops_std == pytest.approx(np.std([14.0, 42.0, 112.0]))
    assert summary.frames_student == pytest.approx(48 / 3)
    adaptive = frame_counts(records, build_sampling("adaptive", n_t=5, ratio=4))
    np.testing.assert_array_equal(adaptive, [[20, 5]] * 3)
