import math

import torch

from dkp.evaluation.metrics import TopKHit, VideoMAP, hit_at_k, mean_average_precision


def test_map_by_hand():
    # class 0: ranking pos, neg, pos -> AP = (1/1 + 2/3) / 2
    # class 1: ranking neg, pos       -> AP = 1/2 ; class 2 has no positive: excluded
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.5, 0.3, 0.2], [0.4, 0.6, 0.0], [0.1, 0.2, 0.7]])
    target = torch.tensor([[1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0]])
    # class 1 scores: 0.1, 0.3, 0.6, 0.2 -> ranking v2(neg), v1(neg), v3(pos) => AP = 1/3
    expected = ((1 + 2 / 3) / 2 + 1 / 3) / 2
    assert math.isclose(mean_average_precision(scores, target), expected, rel_tol=1e-6)
    metric = VideoMAP()
    metric.update(scores[:2], target[:2])
    metric.update(scores[2:], target[2:])
    assert math.isclose(float(metric.compute()), expected, rel_tol=1e-6)


def test_hit_at_k_multilabel():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
    target = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 1, 0]])
    assert hit_at_k(scores, target, 1).tolist() == [0.0, 1.0, 0.0]
    assert hit_at_k(scores, target, 2).tolist() == [1.0, 1.0, 1.0]
    top1 = TopKHit(1)
    top1.update(scores, target)
    top1.update(scores[:1], torch.zeros(1, 3))  # unlabelled videos are not counted
    assert math.isclose(float(top1.compute()), 1 / 3, rel_tol=1e-6)
