import numpy as np
import pytest

from dkp.data.sampling import AdaptiveSampler, FixedIntervalSampler, build_sampling
from dkp.data.sampling.frame_times import clip_times

rng = np.random.default_rng


@pytest.mark.parametrize("duration", [0.7, 5.0, 60.0, 1234.5])
def test_adaptive_count_bounds_and_order(duration):
    sampler = AdaptiveSampler(8)
    for training in (False, True):
        t = sampler(duration, training, rng(0))
        assert t.shape == (8,)
        assert np.all(t >= 0) and np.all(t < duration)
        assert np.all(np.diff(t) > 0)
        segment = np.floor(t / (duration / 8))
        np.testing.assert_array_equal(segment, np.arange(8))


def test_adaptive_eval_is_segment_centres_and_deterministic():
    t = AdaptiveSampler(4)(8.0, False, rng(0))
    np.testing.assert_allclose(t, [1.0, 3.0, 5.0, 7.0])
    np.testing.assert_array_equal(t, AdaptiveSampler(4)(8.0, False, rng(123)))


def test_training_times_are_random_but_reproducible():
    sampler = AdaptiveSampler(6)
    a, b = sampler(30.0, True, rng(1)), sampler(30.0, True, rng(2))
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, sampler(30.0, True, rng(1)))


def test_fixed_interval_count_grows_with_duration():
    sampler = FixedIntervalSampler(2.0)
    counts = [sampler.count(d) for d in (0.5, 3.0, 10.0, 61.0, 120.0)]
    assert counts == [1, 2, 5, 31, 60]
    t = sampler(10.0, False, rng(0))
    np.testing.assert_allclose(t, [1.0, 3.0, 5.0, 7.0, 9.0])
    t = sampler(120.0, True, rng(0))
    assert len(t) == 60 and np.all(np.diff(t) > 0) and t[0] >= 0 and t[-1] < 120.0


def test_fixed_interval_clamps():
    sampler = FixedIntervalSampler(4.0, min_frames=2, max_frames=10)
    assert sampler.count(1.0) == 2
    assert sampler.count(400.0) == 10
    assert len(sampler(400.0, False, rng(0))) == 10


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"strategy": "adaptive", "n_t": 0, "ratio": 4}, "n_t"),
        ({"strategy": "adaptive", "n_t": 2, "n_s": -1}, "n_s"),
        ({"strategy": "adaptive", "ratio": 4}, "n_t"),
        ({"strategy": "fixed", "r_t": -2.0, "ratio": 4}, "r_t"),
        ({"strategy": "fixed", "r_t": 2.0}, "r_s"),
        ({"strategy": "fixed", "r_t": 2.0, "ratio": 0.5}, "ratio"),
        ({"strategy": "fixed", "ratio": 4, "networks": ["student"]}, "r_t"),
        ({"strategy": "uniform", "n_t": 2, "ratio": 4}, "strategy"),
        ({"strategy": "adaptive", "n_t": 2, "ratio": -4}, "ratio"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"sampling.{field}"):
        build_sampling(**kwargs)


def test_ratio_derives_the_student():
    adaptive = build_sampling("adaptive", n_t=5, ratio=4)
    assert adaptive.student.count(100.0) == 20 and adaptive.teacher.count(100.0) == 5
    fixed = build_sampling("fixed", r_t=8.0, ratio=4)
    assert fixed.teacher.interval == 8.0
    # n_s / n_t is the ratio for every video, short ones (teacher clamped to 1 frame) included.
    for duration, n_t in [(3.0, 1), (11.9, 1), (12.0, 2), (99.0, 12), (101.0, 13)]:
        assert fixed.teacher.count(duration) == n_t
        assert fixed.student.count(duration) == 4 * n_t
    times = fixed.student(99.0, training=False, rng=np.random.default_rng(0))
    np.testing.assert_allclose(np.diff(times), 99.0 / 48)
    own = build_sampling("fixed", r_t=8.0, r_s=2.0)
    assert own.student.interval == 2.0 and own.student.count(3.0) == 2
    teacher_only = build_sampling("adaptive", n_t=3, networks=["teacher"])
    assert teacher_only.student is None and teacher_only.teacher.count(5.0) == 3


def test_temporal_clips_shift_every_segment_and_one_clip_is_the_centres():
    sampler = AdaptiveSampler(4)
    np.testing.assert_allclose(clip_times(sampler, 8.0, 0, 2), [0.5, 2.5, 4.5, 6.5])
    np.testing.assert_allclose(clip_times(sampler, 8.0, 1, 2), [1.5, 3.5, 5.5, 7.5])
    np.testing.assert_array_equal(clip_times(sampler, 8.0, 0, 1), sampler(8.0, False, rng(0)))
    fixed = FixedIntervalSampler(2.0)  # 5 frames on 10 s, whatever the clip
    assert [len(clip_times(fixed, 10.0, j, 3)) for j in range(3)] == [5, 5, 5]
    np.testing.assert_allclose(clip_times(fixed, 10.0, 2, 3), np.arange(5) * 2.0 + 2.5 / 1.5)
    with pytest.raises(ValueError, match="clip 2"):
        clip_times(sampler, 8.0, 2, 2)
