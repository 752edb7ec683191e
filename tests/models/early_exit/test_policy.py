"""The one exit rule: first checkpoint whose confidence reaches its threshold; the last stops."""

import pytest
import torch

from dkp.models.early_exit.policy import ExitPolicy


def probs_of(confidence: list[list[float]]) -> torch.Tensor:
    """Probabilities ``(V, K, 2)`` whose maximum is each given confidence (>= 0.5)."""
    conf = torch.tensor(confidence)
    return torch.stack([conf, 1 - conf], dim=-1)


def test_exits_follow_the_rule_offline_and_online():
    probs = probs_of([[0.9, 0.6, 0.6], [0.6, 0.8, 0.6], [0.6, 0.7, 0.8], [0.5, 0.99, 0.6]])
    assert ExitPolicy.of([0.85, 0.75, 0.95], 3).exits(probs).tolist() == [0, 1, 2, 1]
    assert ExitPolicy.of(0.0, 3).exits(probs).tolist() == [0, 0, 0, 0]
    assert ExitPolicy.of(None, 3).exits(probs).tolist() == [2, 2, 2, 2]
    policy = ExitPolicy.of([0.85, 0.75], 3)  # the last checkpoint needs no threshold
    assert policy.thresholds == (0.85, 0.75, 0.0)
    walked, running = torch.full((4,), -1), torch.ones(4, dtype=torch.bool)
    for k in range(3):  # the online walk: each checkpoint stops some of the running videos
        stop = policy.stops(k, probs[:, k]) & running
        walked[stop], running = k, running & ~stop
    assert walked.tolist() == policy.exits(probs).tolist() == [0, 1, 2, 1]


def test_threshold_counts_are_checked():
    with pytest.raises(ValueError, match="need 4 \\(or 3\\) values, got 2"):
        ExitPolicy.of([0.5, 0.6], 4)
