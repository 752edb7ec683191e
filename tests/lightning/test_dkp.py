"""DKPModule as dynamic DKP: its checkpoints and what stopping at each costs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dkp.lightning import DKPModule
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


@pytest.mark.parametrize(("field", "value"), [("exit_steps", 0), ("exit_steps", -1)])
def test_bad_dynamic_options_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"model.{field}"):
        module(**{field: value})
