"""Bootstrap replicates: the plain metrics at unit weights, intervals that cover and narrow."""

from __future__ import annotations

import numpy as np
import pytest

from dkp.evaluation.bootstrap import (
    interpolate,
    interval,
    map_replicates,
    replicate_weights,
    top1_replicates,
)

sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn (dev extra)")


def test_unit_weights_give_the_plain_map_and_top1():
    rng = np.random.default_rng(1)
    probs = rng.random((50, 4))
    target = np.eye(4)[rng.integers(0, 4, 50)]
    ones = np.ones((1, 50))
    expected = np.mean(
        [sklearn_metrics.average_precision_score(target[:, c], probs[:, c]) for c in range(4)]
    )
    assert map_replicates(probs, target, ones)[0] == pytest.approx(expected, abs=1e-12)
    right = target[np.arange(50), probs.argmax(1)].mean()
    assert top1_replicates(probs, target, ones)[0] == pytest.approx(right)


def test_intervals_narrow_with_more_videos_and_cover_the_truth():
    """A classifier right 80 % of the time: the 95 % interval of its top-1 holds 0.8 and is
    about half as wide with four times the videos."""
    widths = []
    for videos in (200, 800):
        rng = np.random.default_rng(videos)
        target = np.eye(2)[rng.integers(0, 2, videos)]
        right = rng.random(videos) < 0.8
        probs = np.where(right[:, None], target, 1 - target)
        lo, hi = interval(top1_replicates(probs, target, replicate_weights(videos, 2000, 0)))
        assert lo < right.mean() < hi
        widths.append(hi - lo)
    assert widths[1] == pytest.approx(widths[0] / 2, rel=0.2)


def test_curves_are_read_between_points_replicate_by_replicate():
    xs = np.array([1.0, 3.0])
    values = np.array([[10.0, 20.0], [30.0, 60.0]])  # 2 points x 2 replicates
    np.testing.assert_allclose(interpolate(2.0, xs, values), [20.0, 40.0])
    np.testing.assert_allclose(interpolate(3.0, xs, values), [30.0, 60.0])
    with pytest.raises(ValueError, match="outside"):
        interpolate(4.0, xs, values)
