"""DKPModule as dynamic DKP: its checkpoints and what stopping at each costs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dkp.evaluation.cost import count_gmacs
from dkp.lightning import DKPModule
from dkp.models.dkp.selector import FrameSelector
from dkp.models.early_exit.policy import ExitPolicy
from tests.models.dkp.test_dynamic import make_batch

BACKBONE = {"_target_": "dkp.models.backbones.build_backbone", "name": "resnet18",
            "base_width": 8, "layers": [1, 1, 1, 1]}  # fmt: skip
NET = {"_target_": "dkp.models.frame_net.FrameNet", "num_classes": 5, "backbone": BACKBONE}


def module(**options) -> DKPModule:
    torch.manual_seed(0)
    return DKPModule(NET, NET, 32, 48, propagation={"dim": 16, "heads": 2},
                     freeze_teacher=False, **options).eval()  # fmt: skip


def test_checkpoints_cost_the_student_then_each_teacher_step():
    dkp, batch = module(exit_steps=2), make_batch(videos=3, n_s=4, n_t=4)
    batch.teacher_mask[2, 3] = False  # a video with 3 teacher frames: steps of 2 and 3
    assert dkp.num_checkpoints == 3
    gflops, frames = dkp.checkpoint_costs(batch)
    cost = dkp.cost_model()
    assert frames[:, :, 1].tolist() == [[0, 2, 4], [0, 2, 4], [0, 2, 3]]
    assert gflops[2].tolist() == [4 * cost.student_frame, cost.video(4, 2), cost.video(4, 3)]
    scores = dkp.checkpoint_scores(batch)
    assert scores.probs.shape == (3, 3, 5)
    torch.testing.assert_close(scores.probs[:, -1], dkp.video_probs(batch), rtol=1e-5, atol=1e-6)
    out = dkp.infer(batch, ExitPolicy.of(None, 3))
    np.testing.assert_allclose(out.gflops.numpy(), gflops[:, -1])


def test_a_frame_selector_orders_and_limits_the_teacher_frames_and_is_costed():
    dkp, batch = module(exit_steps=2), make_batch(videos=3, n_s=4, n_t=4)
    plain, _ = dkp.checkpoint_costs(batch)
    torch.manual_seed(0)
    dkp.use_frame_selector(FrameSelector(width=2).eval(), limit=2)
    masks = dkp.teacher_steps(batch)
    assert masks.sum(2).tolist() == [[1, 2]] * 3  # the best 2 of 4, one per step
    gflops, frames = dkp.checkpoint_costs(batch)
    assert frames[:, :, 1].tolist() == [[0, 1, 2]] * 3
    selector = count_gmacs(dkp.frame_selector, torch.zeros(1, 3, 32, 32))
    assert selector > 0
    cost = dkp.cost_model()
    assert gflops[0].tolist() == pytest.approx(
        [plain[0, 0], cost.video(4, 1) + 4 * selector, cost.video(4, 2) + 4 * selector]
    )  # the selector runs on the 4 candidates once the student is not enough
    offline = dkp.checkpoint_scores(batch)
    out = dkp.infer(batch, ExitPolicy.of(None, 3))  # online, every video to the end
    torch.testing.assert_close(out.probs, offline.probs[:, -1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.gflops.numpy(), gflops[:, -1])


def test_student_steps_cost_only_the_student_frames_seen_then_the_teacher_steps():
    dkp = module(exit_steps=2, exit_student_steps=2)
    batch = make_batch(videos=3, n_s=4, n_t=4)
    batch.student_mask[2, 3] = False  # a video with 3 student frames: steps of 2 and 3
    assert dkp.num_checkpoints == 4
    gflops, frames = dkp.checkpoint_costs(batch)
    cost = dkp.cost_model()
    assert frames[2].tolist() == [[2, 0], [3, 0], [3, 2], [3, 4]]
    assert frames[0, :, 0].tolist() == [2, 4, 4, 4]
    assert gflops[2].tolist() == pytest.approx(
        [2 * cost.student_frame, 3 * cost.student_frame, cost.video(3, 2), cost.video(3, 4)]
    )
    offline = dkp.checkpoint_scores(batch)
    assert offline.probs.shape == (3, 4, 5)
    out = dkp.infer(batch, ExitPolicy.of(0.0, 4))  # everyone stops at the first student step
    assert out.exit_index.tolist() == [0, 0, 0]
    torch.testing.assert_close(out.probs, offline.probs[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.gflops.numpy(), gflops[:, 0])


def test_a_checkpoint_without_the_student_steps_option_keeps_one_student_checkpoint():
    dkp = module(exit_steps=2)
    del dkp.hparams["exit_student_steps"]  # as saved before the option existed
    assert dkp.student_steps == 1 and dkp.num_checkpoints == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [("exit_steps", 0), ("exit_steps", -1), ("exit_student_steps", 0)],
)
def test_bad_dynamic_options_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"model.{field}"):
        module(**{field: value})
