"""Exits from scores under thresholds, and thresholds chosen for a budget."""

import numpy as np
import pytest
import torch

from dkp.evaluation.early_exit.scores import ExitScores
from dkp.models.early_exit.policy import ExitPolicy

C = 5


def random_scores(videos: int = 40, checkpoints: int = 4, seed: int = 0) -> ExitScores:
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(3 * torch.randn(videos, checkpoints, C, generator=g), dim=-1)
    costs = np.tile(np.cumsum(np.arange(1, checkpoints + 1, dtype=float)), (videos, 1))
    frames = np.zeros((videos, checkpoints, 2))
    frames[:, :, 1] = 2 * np.arange(1, checkpoints + 1)
    target = torch.nn.functional.one_hot(torch.randint(0, C, (videos,), generator=g), C).float()
    return ExitScores(probs, costs, frames, target, [str(i) for i in range(videos)])


def exits(scores: ExitScores, t: float):
    return scores.exits(ExitPolicy.of(t, scores.num_checkpoints))


def test_counts_sum_to_the_videos_and_costs_follow_exits():
    scores = random_scores()
    for t in (0.0, 0.4, 0.6, 0.8, 1.01):
        out = exits(scores, t)
        counts = out.counts(4)
        assert sum(counts) == 40
        assert out.gflops.tolist() == [[1, 3, 6, 10][k] for k in out.exit_index]
    assert exits(scores, 0.0).counts(4) == [40, 0, 0, 0]
    assert exits(scores, 1.01).counts(4) == [0, 0, 0, 40]


@pytest.mark.parametrize("budget", [1.0, 2.2, 4.0, 5.5, 7.3, 10.0, 50.0])
def test_thresholds_chosen_for_a_budget_meet_it(budget):
    scores = random_scores(seed=3)
    t, achieved = scores.select_threshold(budget)
    out = exits(scores, t)
    assert out.gflops.mean() == pytest.approx(achieved) and achieved <= budget + 1e-12
    # it is the largest such threshold: the next confidence value up would exceed the budget
    conf = scores.probs.max(dim=2).values[:, :-1].flatten()
    higher = conf[conf > t]
    if len(higher):
        assert exits(scores, higher.min().item()).gflops.mean() > budget
    else:
        assert t == float("inf") or achieved == 10.0


def test_a_budget_below_the_first_checkpoint_is_refused():
    with pytest.raises(ValueError, match="below the cost"):
        random_scores().select_threshold(0.5)


def test_the_oracle_stops_each_video_at_its_first_right_checkpoint():
    scores = random_scores(videos=3, checkpoints=3)
    probs = torch.full((3, 3, C), 0.1)
    tops = [[2, 0, 0], [2, 2, 1], [3, 3, 3]]  # video v's top class at each checkpoint
    for v, row in enumerate(tops):
        for k, c in enumerate(row):
            probs[v, k, c] = 0.6
    scores.probs = probs
    scores.target = torch.nn.functional.one_hot(torch.tensor([0, 1, 0]), C).float()
    oracle = scores.oracle()
    assert oracle.exit_index.tolist() == [1, 2, 2]  # the third is never right: the last
    assert oracle.gflops.tolist() == [3, 6, 6]
    assert oracle.counts(3) == [0, 1, 2]
    # never dearer than any threshold rule that is right as often
    for t in (0.0, 0.5, 1.01):
        rule = exits(scores, t)
        right = scores.target.gather(1, rule.probs.argmax(1, keepdim=True)).sum()
        assert right < 2 or rule.gflops.mean() >= oracle.gflops.mean()
