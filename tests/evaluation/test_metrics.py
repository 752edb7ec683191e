import math

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from dkp.evaluation.metrics import (
    TopKHit,
    VideoMAP,
    average_precision,
    average_precision_per_class,
    hit_at_k,
    mean_average_precision,
)


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


def random_scores(kind: str, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Scores of one kind: what models output, and what breaks a float32 ranking."""
    if kind == "probabilities":
        return rng.random(shape)
    if kind == "logits":
        return rng.normal(0, 3, shape)
    if kind == "large logits":  # a float32 sigmoid makes all of these 1.0
        return rng.normal(40, 15, shape)
    if kind == "ties":
        return rng.integers(0, 4, shape) / 4
    # float64 scores closer together than float32 can tell apart
    return 0.5 + rng.integers(0, 1000, shape) * 1e-12


KINDS = ["probabilities", "logits", "large logits", "ties", "close float64"]


def sklearn_ap(scores: np.ndarray, target: np.ndarray) -> np.ndarray:
    """scikit-learn's AP per class; NaN where a class has no positive."""
    return np.array(
        [
            average_precision_score(target[:, c], scores[:, c]) if target[:, c].any() else np.nan
            for c in range(scores.shape[1])
        ]
    )


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("labels", ["single", "multi"])
def test_ap_equals_scikit_learns_on_every_kind_of_score(kind, labels):
    rng = np.random.default_rng(KINDS.index(kind))
    for n, c in ((1, 1), (7, 1), (50, 6), (300, 20)):
        scores = random_scores(kind, rng, (n, c))
        if labels == "single":
            target = np.eye(c, dtype=np.int64)[rng.integers(0, c, n)]
        else:
            target = (rng.random((n, c)) < 0.3).astype(np.int64)
        target[:, -1] = 0 if c > 1 else target[:, -1]  # a class without positives
        expected = sklearn_ap(scores, target)
        got = average_precision_per_class(torch.from_numpy(scores), torch.from_numpy(target))
        assert got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12, equal_nan=True)
        scored = ~np.isnan(expected)
        want = float(expected[scored].mean()) if scored.any() else math.nan
        got_map = mean_average_precision(torch.from_numpy(scores), torch.from_numpy(target))
        assert got_map == pytest.approx(want, abs=1e-12, nan_ok=True)


def test_ap_does_not_change_under_a_monotone_transform_of_the_scores():
    rng = np.random.default_rng(0)
    logits = torch.from_numpy(rng.normal(0, 3, (200, 5)))
    target = torch.from_numpy((rng.random((200, 5)) < 0.2).astype(np.int64))
    ap = average_precision_per_class(logits, target)
    for transform in (torch.sigmoid, lambda x: 3 * x - 7, torch.exp, lambda x: x.pow(3)):
        assert torch.equal(average_precision_per_class(transform(logits), target), ap)
    # Large float32 logits are ranked as given (a float32 sigmoid ties every one above ~17).
    large = (logits * 5 + 40).float()
    assert torch.equal(
        average_precision_per_class(large, target),
        average_precision_per_class(large.double() - 40, target),
    )


def test_one_class_and_no_videos():
    scores, target = torch.tensor([0.2, 0.9, 0.5]), torch.tensor([0, 1, 1])
    assert average_precision_per_class(scores, target).tolist() == [1.0]
    assert mean_average_precision(scores[:, None], torch.tensor([[0], [0], [0]])) != 0
    assert math.isnan(mean_average_precision(torch.zeros(0, 3), torch.zeros(0, 3)))


def test_video_map_keeps_float64_scores():
    metric = VideoMAP()
    scores = torch.tensor([[0.5 + 1e-12], [0.5], [0.5 + 2e-12]], dtype=torch.float64)
    metric.update(scores, torch.tensor([[0], [0], [1]]))
    assert float(metric.compute()) == 1.0  # float32 would tie all three: AP 1/3


@pytest.mark.parametrize("seed", range(20))
def test_ap_under_video_weights_is_scikit_learns_with_sample_weights(seed):
    rng = np.random.default_rng(seed)
    videos = int(rng.integers(2, 60))
    scores = rng.normal(size=videos)
    if seed % 3 == 0:
        scores = np.round(scores, 1)  # ties share one step
    positive = rng.random(videos) < (0.3 if seed % 2 else 0.9)  # rare and frequent classes
    positive[0] = True
    weights = np.random.default_rng(seed).multinomial(videos, np.full(videos, 1 / videos), 4)
    ours = average_precision(scores, positive, weights)
    for row, ap in zip(weights, ours, strict=True):
        if (row * positive).sum() == 0:
            assert np.isnan(ap)  # no positive drawn: undefined, left out of the mean
        else:
            expected = average_precision_score(positive, scores, sample_weight=row)
            assert ap == pytest.approx(expected, abs=1e-12)


def test_ap_of_a_weight_row_is_the_same_alone_or_in_a_batch():
    rng = np.random.default_rng(0)
    scores, positive = np.round(rng.normal(size=300), 1), rng.random(300) < 0.2
    weights = rng.multinomial(300, np.full(300, 1 / 300), 50).astype(np.float64)
    batch = average_precision(scores, positive, weights)
    alone = [average_precision(scores, positive, row)[0] for row in weights]
    assert batch.tolist() == alone  # bit for bit: a point's value is its all-ones replicate


def test_ap_when_the_positives_tie_with_negatives_at_the_end():
    scores = np.array([3.0, 2.0, 1.0, 1.0, 1.0])
    positive = np.array([False, True, False, True, False])
    # thresholds: {3} no positive, {2} P=1/2 R=1/2, {1,1,1} P=2/5 R=1
    assert average_precision(scores, positive, np.ones(5)).tolist() == [0.5 * 0.5 + 0.5 * 0.4]
    assert np.isnan(average_precision(scores, np.zeros(5, bool), np.ones((2, 5)))).all()
