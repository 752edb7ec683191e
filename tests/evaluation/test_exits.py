"""Exits from scores, thresholds for a budget, exit-count tables, dynamic DKP, the figure."""

import numpy as np
import pytest
import torch

from dkp.data.batch import Batch
from dkp.evaluation.exit_figures import ExitExample, pick_examples, plot_exit_examples
from dkp.evaluation.exits import (
    ExitScores,
    common,
    exit_counts,
    exit_indices,
    exits_for,
    select_threshold,
    write_exit_tables,
)
from dkp.models.backbones import build_backbone
from dkp.models.dkp import DKPNet
from dkp.models.dynamic_dkp import batch_rows, dynamic_dkp_inference
from dkp.models.frame_net import FrameNet, masked_mean

C = 5


def random_scores(videos: int = 40, checkpoints: int = 4, seed: int = 0) -> ExitScores:
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(3 * torch.randn(videos, checkpoints, C, generator=g), dim=-1)
    costs = np.tile(np.cumsum(np.arange(1, checkpoints + 1, dtype=float)), (videos, 1))
    frames = np.zeros((videos, checkpoints, 2))
    frames[:, :, 1] = 2 * np.arange(1, checkpoints + 1)
    target = torch.nn.functional.one_hot(torch.randint(0, C, (videos,), generator=g), C).float()
    return ExitScores(probs, costs, frames, target, [str(i) for i in range(videos)])


def test_exit_indices_follow_the_rule():
    conf = torch.tensor([[0.9, 0.1, 0.1], [0.2, 0.8, 0.1], [0.2, 0.3, 0.4], [0.5, 0.99, 0.2]])
    assert exit_indices(conf, [0.5, 0.7, 0.9]).tolist() == [0, 1, 2, 0]
    assert exit_indices(conf, [0.0, 0.0, 0.0]).tolist() == [0, 0, 0, 0]
    assert exit_indices(conf, [1.5, 1.5, 1.5]).tolist() == [2, 2, 2, 2]


def test_counts_sum_to_the_videos_and_costs_follow_exits():
    scores = random_scores()
    for t in (0.0, 0.4, 0.6, 0.8, 1.01):
        out = exits_for(scores, common(t, 4))
        counts = exit_counts(out.exit_index, 4)
        assert sum(counts) == 40
        assert out.gflops.tolist() == [[1, 3, 6, 10][k] for k in out.exit_index]
    assert exit_counts(exits_for(scores, common(0.0, 4)).exit_index, 4) == [40, 0, 0, 0]
    assert exit_counts(exits_for(scores, common(1.01, 4)).exit_index, 4) == [0, 0, 0, 40]


@pytest.mark.parametrize("budget", [1.0, 2.2, 4.0, 5.5, 7.3, 10.0, 50.0])
def test_thresholds_chosen_for_a_budget_meet_it(budget):
    scores = random_scores(seed=3)
    t, achieved = select_threshold(scores, budget)
    out = exits_for(scores, common(t, 4))
    assert out.gflops.mean() == pytest.approx(achieved) and achieved <= budget + 1e-12
    # it is the largest such threshold: the next confidence value up would exceed the budget
    conf = scores.confidence()[:, :-1].flatten()
    higher = conf[conf > t]
    if len(higher):
        assert exits_for(scores, common(higher.min().item(), 4)).gflops.mean() > budget
    else:
        assert t == float("inf") or achieved == 10.0


def test_a_budget_below_the_first_checkpoint_is_refused():
    with pytest.raises(ValueError, match="below the cost"):
        select_threshold(random_scores(), 0.5)


def test_exit_tables(tmp_path):
    csv_path, md_path = write_exit_tables(
        {"Kinetics-400": [3433, 4292, 5365, 6706], "short": [1, 2]}, tmp_path
    )
    assert csv_path.read_text().splitlines() == [
        "Checkpoint,1,2,3,4,Total",
        "Kinetics-400,3433,4292,5365,6706,19796",
        "short,1,2,-,-,3",
    ]
    assert (
        md_path.read_text().splitlines()[2]
        == "| Kinetics-400 | 3433 | 4292 | 5365 | 6706 | 19796 |"
    )


# --- dynamic DKP --------------------------------------------------------------------------------
def tiny_dkp() -> DKPNet:
    torch.manual_seed(0)

    def frame_net(width: int) -> FrameNet:
        return FrameNet(build_backbone("resnet18", base_width=width, layers=[1, 1, 1, 1]), C)

    return DKPNet(frame_net(8), frame_net(16), {"dim": 32, "heads": 4}, {"hidden": 16}).eval()


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


@torch.no_grad()
def test_dynamic_dkp_runs_the_teacher_only_for_unsure_videos():
    net, batch = tiny_dkp(), make_batch()
    full = net(batch)
    student = masked_mean(full.student_logits.softmax(-1), batch.student_mask)
    conf = student.max(1).values
    threshold = conf.sort().values[2].item()  # the 2 least confident videos go on
    rows = []
    handle = net.teacher.backbone.register_forward_hook(lambda m, i, o: rows.append(len(i[0])))
    try:
        out = dynamic_dkp_inference(net, batch, threshold)
    finally:
        handle.remove()
    go_on = conf < threshold
    assert out.exit_index.tolist() == go_on.long().tolist() and int(go_on.sum()) == 2
    assert rows == [2 * 2]  # 2 videos x 2 teacher frames, once
    torch.testing.assert_close(out.probs[~go_on], student[~go_on])
    # the videos that go on get exactly what DKP gives them on their own
    alone = net(batch_rows(batch, torch.nonzero(go_on).flatten())).video_probs
    torch.testing.assert_close(out.probs[go_on], alone, rtol=1e-5, atol=1e-6)
    assert dynamic_dkp_inference(net, batch, 0.0).exit_index.tolist() == [0] * 6
    everyone = dynamic_dkp_inference(net, batch, 1.01)
    torch.testing.assert_close(everyone.probs, full.video_probs, rtol=1e-5, atol=1e-6)


# --- figure -------------------------------------------------------------------------------------
def test_pick_examples_and_figure(tmp_path):
    exits = np.array([0, 0, 1, 2, 2, 0, 3, 3])
    correct = np.array([False, True, True, True, False, True, False, True])
    picked = pick_examples(exits, correct, checkpoints=4)
    assert picked == [(0, [1, 5]), (1, [2]), (3, [7, 6])]
    frames = np.zeros((8, 16, 16, 3), dtype=np.uint8)
    rows = [
        (k, [ExitExample(str(i), frames, k + 1, "a", "a" if correct[i] else "b") for i in idx])
        for k, idx in picked
    ]
    out = plot_exit_examples(rows, tmp_path / "examples.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
