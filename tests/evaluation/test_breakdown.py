import numpy as np
import pytest

from dkp.evaluation.breakdown import group_scores

# Four videos, three classes; video 3 has two labels (classes 0 and 2).
PROBS = np.array([[0.7, 0.2, 0.1], [0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.2, 0.1, 0.7]])
TARGET = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1]], np.uint8)
DURATIONS = np.array([5.0, 30.0, 10.0, 40.0])
GROUPS = {"one or two": [0, 1], "three": [2]}


def test_each_group_has_its_own_map_and_top1_on_short_and_long_videos():
    weights = np.array([[1, 1, 1, 1], [0, 2, 2, 0]], float)  # the full set, then a replicate
    one, three = group_scores(PROBS, TARGET, DURATIONS, GROUPS, weights, edge=20.0)
    assert (one.group, one.videos, three.group, three.videos) == ("one or two", 3, "three", 2)
    # class 0 ranks videos 0+, 1-, 3+, 2-: AP (1 + 2/3) / 2; class 1 ranks video 1 first: AP 1
    assert one.map[0] == pytest.approx((5 / 6 + 1.0) / 2)
    assert three.map[0] == pytest.approx(1.0)
    # the short one (video 0) is right; of the long ones video 1 is wrong, video 3 right
    assert one.top1_shorter[0] == 1.0 and one.top1_longer[0] == 0.5
    assert three.top1_shorter[0] == 1.0 and three.top1_longer[0] == 1.0
    # a replicate drawing no short video of a group has no top-1 there, not a zero
    assert np.isnan(one.top1_shorter[1]) and one.top1_longer[1] == 0.0


def test_a_group_without_videos_or_classes():
    no_videos = group_scores(PROBS, TARGET[:, [0, 1, 1]] * [1, 1, 0], DURATIONS, GROUPS,
                             np.ones(4), edge=20.0)[1]  # fmt: skip
    assert no_videos.videos == 0 and np.isnan(no_videos.top1_shorter).all()
    assert np.isnan(no_videos.top1_longer).all()
    with pytest.raises(ValueError, match="group 'empty' has no class"):
        group_scores(PROBS, TARGET, DURATIONS, {"empty": []}, np.ones(4), edge=20.0)
