"""Dynamic DKP: the student's frames, then the teacher's, step by step, only for the videos
not stopped yet, each frame run once."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from dkp.data.batch import Batch
from dkp.models.backbones import build_backbone
from dkp.models.dkp import DKPNet
from dkp.models.dkp.dynamic import (
    batch_rows,
    coarse_to_fine,
    dkp_checkpoint_probs,
    dynamic_dkp_inference,
    step_masks,
)
from dkp.models.early_exit.policy import ExitPolicy
from dkp.models.frame_net import FrameNet, masked_mean

C = 5


def tiny_dkp() -> DKPNet:
    torch.manual_seed(0)

    def frame_net(width: int) -> FrameNet:
        return FrameNet(build_backbone("resnet18", base_width=width, layers=[1, 1, 1, 1]), C)

    return DKPNet(frame_net(8), frame_net(16), {"dim": 32, "heads": 4}, {"hidden": 16}).eval()


@contextmanager
def frames_run_by(module: torch.nn.Module) -> Iterator[list[int]]:
    """The number of frames in each forward call of ``module`` while inside the block."""
    calls: list[int] = []
    hook = module.register_forward_hook(lambda _m, i, _o: calls.append(len(i[0])))
    try:
        yield calls
    finally:
        hook.remove()


def make_batch(videos: int = 6, n_s: int = 4, n_t: int = 2) -> Batch:
    g = torch.Generator().manual_seed(1)
    duration = torch.full((videos,), 10.0)
    return Batch(
        target=torch.zeros(videos, C),
        duration=duration,
        video_ids=[f"v{i}" for i in range(videos)],
        student_frames=torch.randint(0, 256, (videos, n_s, 3, 32, 32), generator=g).byte(),
        student_times=torch.linspace(1, 9, n_s).repeat(videos, 1),
        student_mask=torch.ones(videos, n_s, dtype=torch.bool),
        teacher_frames=torch.randint(0, 256, (videos, n_t, 3, 48, 48), generator=g).byte(),
        teacher_times=torch.linspace(2, 8, n_t).repeat(videos, 1),
        teacher_mask=torch.ones(videos, n_t, dtype=torch.bool),
    )


@pytest.mark.parametrize(
    ("count", "order"),
    [
        (0, []),
        (1, [0]),
        (2, [0, 1]),
        (4, [1, 3, 0, 2]),
        (5, [2, 0, 4, 1, 3]),
        (8, [3, 7, 0, 5, 1, 2, 4, 6]),
    ],
)
def test_teacher_frames_are_added_coarse_to_fine(count, order):
    assert coarse_to_fine(count) == order


def test_each_step_sees_a_growing_share_of_each_videos_real_teacher_frames():
    mask = torch.tensor([[True] * 4, [True, True, True, False], [True, False, False, False]])
    steps = step_masks(mask, 4)
    assert steps.sum(2).tolist() == [[1, 2, 3, 4], [1, 2, 3, 3], [1, 1, 1, 1]]
    assert steps[0].long().tolist() == [[0, 1, 0, 0], [0, 1, 0, 1], [1, 1, 0, 1], [1, 1, 1, 1]]
    assert not (steps & ~mask[:, None]).any()  # never a padded frame
    assert (steps[:, :-1] <= steps[:, 1:]).all()  # nested: a step only adds frames
    assert step_masks(mask, 2).sum(2).tolist() == [[2, 4], [2, 3], [1, 1]]


def test_scored_steps_take_the_best_frames_first_and_at_most_limit():
    mask = torch.tensor([[True] * 4, [True, True, True, False]])
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.2], [0.3, 0.3, 0.3, 9.0]])  # 9.0: padding
    steps = step_masks(mask, 2, scores, limit=2)
    assert steps[0].long().tolist() == [[0, 1, 0, 0], [0, 1, 1, 0]]
    assert steps[1].long().tolist() == [[0, 1, 0, 0], [1, 1, 0, 0]]  # ties: coarse to fine
    every = step_masks(mask, 4, scores)
    assert every.sum(2).tolist() == [[1, 2, 3, 4], [1, 2, 3, 3]]
    assert every[0, 2].long().tolist() == [0, 1, 1, 1]


@torch.no_grad()
def test_checkpoints_are_the_student_then_dkp_over_more_teacher_frames():
    net, batch = tiny_dkp(), make_batch(n_t=4)
    probs = dkp_checkpoint_probs(net, batch, 2)
    full = net(batch)
    student = masked_mean(full.student_logits.softmax(-1), batch.student_mask)
    torch.testing.assert_close(probs[:, 0], student)
    torch.testing.assert_close(probs[:, 2], full.video_probs, rtol=1e-5, atol=1e-6)
    # step 1 is DKP on the two middle-out teacher frames alone
    half = batch_rows(batch, torch.arange(6))
    half.teacher_frames, half.teacher_times = (
        batch.teacher_frames[:, [1, 3]],
        batch.teacher_times[:, [1, 3]],
    )
    half.teacher_mask = batch.teacher_mask[:, [1, 3]]
    torch.testing.assert_close(probs[:, 1], net(half).video_probs, rtol=1e-5, atol=1e-6)


@torch.no_grad()
def test_dynamic_dkp_runs_each_teacher_frame_once_and_only_for_running_videos():
    net, batch = tiny_dkp(), make_batch(n_t=4)
    steps = 2
    offline = dkp_checkpoint_probs(net, batch, steps)
    conf = offline.max(2).values
    # stop 2 videos at the student, 2 more after the first teacher step
    t0 = conf[:, 0].sort().values[-2].item()
    t1 = conf[:, 1][conf[:, 0] < t0].sort().values[-2].item()
    policy = ExitPolicy.of([t0, t1], steps + 1)
    with frames_run_by(net.teacher.backbone) as frames_run:
        out = dynamic_dkp_inference(net, batch, policy)
    expected = policy.exits(offline)
    assert out.exit_index.tolist() == expected.tolist()
    assert sorted(out.exit_index.tolist()) == [0, 0, 1, 1, 2, 2]
    assert frames_run == [4 * 2, 2 * 2]  # 4 videos x 2 frames, then 2 videos x 2 more
    rows = torch.arange(6)
    torch.testing.assert_close(out.probs, offline[rows, expected], rtol=1e-5, atol=1e-6)
    assert out.checkpoint_probs[expected == 0][:, 1:].isnan().all()


@torch.no_grad()
def test_thresholds_zero_and_above_one_stop_everyone_first_and_last():
    net, batch = tiny_dkp(), make_batch()
    assert dynamic_dkp_inference(net, batch, ExitPolicy.of(0.0, 3)).exit_index.tolist() == [0] * 6
    everyone = dynamic_dkp_inference(net, batch, ExitPolicy.of(1.01, 3))
    assert everyone.exit_index.tolist() == [2] * 6
    torch.testing.assert_close(everyone.probs, net(batch).video_probs, rtol=1e-5, atol=1e-6)


@torch.no_grad()
def test_student_steps_add_the_students_frames_coarse_to_fine_and_run_each_once():
    net, batch = tiny_dkp(), make_batch(n_s=4, n_t=4)
    offline = dkp_checkpoint_probs(net, batch, 2, student_steps=2)
    frame_probs = net(batch).student_logits.softmax(-1)
    half = torch.zeros_like(batch.student_mask)
    half[:, [1, 3]] = True  # coarse to fine over 4 frames: 1, 3, then 0 and 2
    torch.testing.assert_close(offline[:, 0], masked_mean(frame_probs, half))
    torch.testing.assert_close(offline[:, 1], masked_mean(frame_probs, batch.student_mask))
    torch.testing.assert_close(offline[:, 2:], dkp_checkpoint_probs(net, batch, 2)[:, 1:])
    conf = offline.max(2).values
    t0 = conf[:, 0].sort().values[-3].item()  # 3 videos stop on 2 student frames
    policy = ExitPolicy.of([t0, 1.01, 1.01], 4)
    with frames_run_by(net.student.backbone) as frames_run:
        out = dynamic_dkp_inference(net, batch, policy, student_steps=2)
    expected = policy.exits(offline)
    assert out.exit_index.tolist() == expected.tolist()
    assert sorted(out.exit_index.tolist()) == [0, 0, 0, 3, 3, 3]
    assert frames_run == [6 * 2, 3 * 2]  # 6 videos x 2 frames, then 3 videos x 2 more
    torch.testing.assert_close(out.probs, offline[torch.arange(6), expected], rtol=1e-5, atol=1e-6)


def test_dynamic_dkp_needs_a_teacher_checkpoint_after_the_student_steps():
    net, batch = tiny_dkp(), make_batch()
    with pytest.raises(ValueError, match="thresholds: dynamic DKP has 2 student checkpoints"):
        dynamic_dkp_inference(net, batch, ExitPolicy.of(0.5, 2), student_steps=2)
