"""Multi-view scoring in every module kind: probabilities averaged, costs summed over views."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hydra.utils import instantiate

from dkp.data.batch import Batch
from dkp.models.early_exit.policy import ExitPolicy
from tests.conftest import compose_config

CLASSES = 12  # the embedded dataset's


def view(videos: int, seed: int, n_s: int = 4, n_t: int = 2) -> Batch:
    """One view of ``videos`` videos: random frames at the embedded sizes."""
    g = torch.Generator().manual_seed(seed)
    target = torch.zeros(videos, CLASSES)
    target[:, 0] = 1

    def frames(n: int, size: int) -> torch.Tensor:
        return torch.randint(0, 256, (videos, n, 3, size, size), generator=g).byte()

    def times(n: int) -> torch.Tensor:
        return (torch.arange(n) + 0.25 + 0.5 * torch.rand(n, generator=g)).repeat(videos, 1)

    return Batch(
        target=target,
        duration=torch.full((videos,), float(max(n_s, n_t))),
        video_ids=[f"v{i}" for i in range(videos)],
        student_frames=frames(n_s, 32),
        student_times=times(n_s),
        student_mask=torch.ones(videos, n_s, dtype=torch.bool),
        teacher_frames=frames(n_t, 64),
        teacher_times=times(n_t),
        teacher_mask=torch.ones(videos, n_t, dtype=torch.bool),
    )


def module(tmp_path, experiment: str, *overrides: str):
    extra = ["model.teacher_ckpt=null", "model.freeze_teacher=false"] if experiment == "dkp" else []
    cfg = compose_config("train", [f"experiment={experiment}", *extra, *overrides], tmp_path)
    torch.manual_seed(0)  # the same random weights whatever ran before
    return instantiate(cfg.model).eval()


@pytest.mark.parametrize("experiment", ["teacher", "student", "dkp"])
def test_views_average_probabilities_and_add_costs(tmp_path, experiment):
    m = module(tmp_path, experiment)
    views = [view(3, seed) for seed in range(3)]
    batch = dataclasses.replace(views[0], extra_views=views[1:])
    with torch.no_grad():
        probs, costs, exits = m.score(batch)
        alone = [m.score(v) for v in views]
    assert exits is None and probs.shape == (3, CLASSES)
    torch.testing.assert_close(probs, torch.stack([a[0] for a in alone]).mean(0))
    single = alone[0][1][0]
    assert [c.video_id for c in costs] == ["v0", "v1", "v2"]
    assert [c.gflops for c in costs] == [pytest.approx(3 * single.gflops)] * 3
    assert (costs[0].frames_student, costs[0].frames_teacher) == (
        3 * single.frames_student,
        3 * single.frames_teacher,
    )


def test_early_exit_views_stop_on_their_own_and_report_the_latest_checkpoint(tmp_path):
    m = module(tmp_path, "early_exit", "model.input_size=64")
    views = [view(2, seed, n_t=8) for seed in range(2)]
    batch = dataclasses.replace(views[0], extra_views=views[1:])
    with torch.no_grad():
        first = torch.stack([m.checkpoint_scores(v).probs[:, 0].max(-1).values for v in views])
        # the surest (view, video) at checkpoint 1 stops there; every other view runs to the end
        # (the threshold halfway to the next surest: batched and alone may differ in the last bit)
        top_two = first.flatten().sort(descending=True).values[:2]
        m.policy = ExitPolicy.of([top_two.mean().item(), 2.0, 2.0], 4)
        surest_view, surest = divmod(int(first.argmax()), 2)
        alone = [m.score(v) for v in views]
        probs, costs, exits = m.score(batch)
    assert [a[2].tolist() for a in alone] == [
        [1 if (v, i) == (surest_view, surest) else 4 for i in range(2)] for v in range(2)
    ]
    assert exits.tolist() == [4, 4]
    torch.testing.assert_close(probs, (alone[0][0] + alone[1][0]) / 2)
    route, frames = m.route.gflops, m.route.frames
    for i, cost in enumerate(costs):
        k = 0 if i == surest else 3
        assert cost.gflops == pytest.approx(route[k] + route[3])
        assert (cost.frames_student, cost.frames_teacher) == (0, frames[k] + frames[3])
