"""The early-exit LightningModule built from the real configs: losses, eval step, arch=paper."""

import pytest
import torch
from hydra.utils import instantiate

from dkp.data.batch import Batch
from dkp.evaluation.early_exit.cost import cumulative_gmacs, unit_costs
from dkp.lightning import MODULES, EarlyExitModule
from dkp.models.early_exit.policy import ExitPolicy
from tests.conftest import compose_config


def build(tmp_path, *overrides: str) -> EarlyExitModule:
    cfg = compose_config("train", ["experiment=early_exit", *overrides], tmp_path)
    return instantiate(cfg.model)


def batch(videos: int = 2, frames: int = 8, size: int = 32) -> Batch:
    g = torch.Generator().manual_seed(0)
    target = torch.zeros(videos, 12)  # the embedded dataset's classes
    target[torch.arange(videos), torch.arange(videos)] = 1
    return Batch(
        target=target,
        duration=torch.full((videos,), 10.0),
        video_ids=[f"v{i}" for i in range(videos)],
        teacher_frames=torch.randint(0, 256, (videos, frames, 3, size, size), generator=g).byte(),
        teacher_times=torch.linspace(0.5, 9.5, frames).repeat(videos, 1),
        teacher_mask=torch.ones(videos, frames, dtype=torch.bool),
    )


def test_registered_and_configured(tmp_path):
    module = build(tmp_path)
    assert MODULES["early_exit"] is EarlyExitModule
    assert module.networks == ("teacher",) and module.input_sizes == {"teacher": 64}
    assert [(c.group, c.depth) for c in module.net.route] == [(0, 2), (1, 3), (2, 3), (3, 3)]
    assert module.net.grid.permutation == (0, 4, 2, 6, 1, 5, 3, 7)
    # the checkpoint-free cost (training/dkp-eval) is the whole route
    full = cumulative_gmacs(module.net, unit_costs(module.net, 64))[-1]
    assert module.cost_model().video(0, 8) == pytest.approx(full)


def test_losses_and_eval_step(tmp_path):
    module = build(tmp_path, "model.distill_weight=0.5", "model.loss_weights=[1,1,1,2]")
    b = batch()
    terms = module.training_loss(b)
    assert set(terms) == {"exits", "last", "distill", "loss"}
    torch.testing.assert_close(terms["loss"], terms["exits"] + 0.5 * terms["distill"])
    terms["loss"].backward()
    assert all(h.weight.grad is not None for h in module.net.heads)
    module.eval()
    module.policy = ExitPolicy.of(0.0, 4)
    out = module.validation_step(b, 0)
    assert out["exit"].tolist() == [1, 1]
    module.policy = ExitPolicy.of(None, 4)
    assert module.validation_step(b, 0)["exit"].tolist() == [4, 4]


def test_online_inference_reports_what_each_video_cost(tmp_path):
    """A video that stops at checkpoint k costs the route up to k, counted once; frames too."""
    module = build(tmp_path).eval()
    route = module.route
    assert route.gflops[0] > 0 and list(route.gflops) == sorted(route.gflops)
    assert route.frames == (2, 4, 6, 8)
    b = batch()
    for threshold, k in ((0.0, 0), (None, 3)):
        module.policy = ExitPolicy.of(threshold, 4)
        costs = module.validation_step(b, 0)["costs"]
        assert [c.gflops for c in costs] == [pytest.approx(route.gflops[k])] * 2
        assert [(c.frames_student, c.frames_teacher) for c in costs] == [(0, route.frames[k])] * 2


def test_uneven_frame_counts_are_refused(tmp_path):
    module = build(tmp_path)
    b = batch()
    b.teacher_mask[0, -1] = False
    with pytest.raises(ValueError, match="adaptive sampling"):
        module.video_probs(b)


def test_msdnet_variant_has_six_checkpoints(tmp_path):
    cfg = compose_config("train", ["experiment=early_exit_msdnet"], tmp_path)
    module = instantiate(cfg.model)
    assert module.net.num_checkpoints == 6 and module.net.grid.groups == 2
    assert type(module.net.body).__name__ == "MSDNet"
