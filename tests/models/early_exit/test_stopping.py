"""A learned stopping score sees what the maximum probability cannot: which top classes lie."""

from __future__ import annotations

import torch

from dkp.models.early_exit.policy import ExitPolicy, max_probability
from dkp.models.early_exit.stopping import LearnedStop, stop_features


def confidently_wrong_on_class_0(videos: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One checkpoint's probabilities over 3 classes: every video's top class has 0.9; those
    whose top class is 0 are right a third of the time, the others always."""
    g = torch.Generator().manual_seed(seed)
    top = torch.randint(0, 3, (videos,), generator=g)
    probs = torch.full((videos, 3), 0.05)
    probs[torch.arange(videos), top] = 0.9
    right = torch.where(top == 0, torch.rand(videos, generator=g) < 1 / 3, torch.tensor(True))
    return probs.unsqueeze(1), right.unsqueeze(1)


def test_features_shape_and_content():
    probs = torch.tensor([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]])
    f = stop_features(probs)
    assert f.shape == (2, 7)
    torch.testing.assert_close(f[0, :3], torch.tensor([0.7, 0.2, 0.1]))
    assert f[1, 3] == torch.tensor(1.0)  # uniform: entropy / log(C) = 1
    assert f[0, 4:].tolist() == [1.0, 0.0, 0.0]


def test_the_learned_score_stops_the_right_videos_where_max_probability_cannot():
    probs, right = confidently_wrong_on_class_0(600, seed=0)
    stop = LearnedStop.fit(probs, right)
    test, test_right = confidently_wrong_on_class_0(300, seed=1)
    learned = stop(0, test[:, 0])
    assert learned[test[:, 0].argmax(1) == 0].max() < 0.5 < learned[test[:, 0].argmax(1) != 0].min()
    assert len(torch.unique(max_probability(0, test[:, 0]))) == 1  # no signal there
    # As a policy: the videos it stops at checkpoint 0 are right; the liars go on.
    policy = ExitPolicy.of(0.5, 2, stop)
    two = torch.cat([test, test], dim=1)  # a second checkpoint that always stops
    stopped = policy.exits(two) == 0
    assert test_right[stopped, 0].all() and stopped.float().mean() > 0.6
