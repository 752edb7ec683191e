import numpy as np
import pytest

from dkp.data.annotations.records import VideoRecord
from dkp.data.sampling import build_sampling
from dkp.evaluation.cost import CostModel
from dkp.evaluation.coverage import segment_coverage

MODEL = CostModel(student_frame=1.0, teacher_frame=10.0)


def record(duration, segment):
    return VideoRecord("v", None, duration, (0,), "validation", segments=(segment,))


def test_counts_videos_whose_frames_land_in_the_action():
    # Adaptive, n_t = 1: the teacher's centre frame is inside [4, 6) of a 10 s video, not
    # inside [0, 2) of a 40 s one; the student's 4 frames (1.25, 3.75, .. s; 5, 15, .. s) miss.
    records = [record(10.0, (4.0, 6.0)), record(40.0, (0.0, 2.0))]
    out = segment_coverage(records, build_sampling("adaptive", n_t=1, ratio=4), MODEL)
    assert (out.gflops, out.share("student"), out.share("teacher")) == (14.0, 0.0, 50.0)
    np.testing.assert_array_equal(out.hits["teacher"], [1.0, 0.0])
    assert out.videos == 2
    # Fixed interval, a teacher frame every 8 s: the 40 s video gets 5 (at 4, 12, .. s) and 20
    # student frames 2 s apart, the first at 1 s, inside the action.
    fixed = segment_coverage(records, build_sampling("fixed", r_t=8.0, ratio=4), MODEL)
    assert fixed.gflops == pytest.approx((14.0 + 70.0) / 2)
    assert (fixed.share("student"), fixed.share("teacher")) == (50.0, 50.0)
    # a bootstrap replicate weighs each video by how often it was drawn
    weights = np.array([[1.0, 1.0], [2.0, 0.0], [0.0, 2.0]])
    np.testing.assert_array_equal(out.shares("teacher", weights), [50.0, 100.0, 0.0])


def test_needs_annotated_segments():
    bare = VideoRecord("v", None, 10.0, (0,), "testing")
    # unannotated videos do not count
    mixed = segment_coverage(
        [bare, record(10.0, (4.0, 6.0))], build_sampling("adaptive", n_t=1, ratio=4), MODEL
    )
    assert (mixed.videos, mixed.share("teacher")) == (1, 100.0)
    with pytest.raises(ValueError, match="no video has annotated segments"):
        segment_coverage([bare], build_sampling("adaptive", n_t=1, ratio=4), MODEL)


def test_table_gives_every_share_and_fixed_minus_adaptive_an_interval():
    """experiments/sampling_coverage.py on 8 videos of 10 to 45 s, the action at [4, 6) s."""
    from experiments.sampling_coverage import coverage_table

    records = [record(10.0 + 5 * i, (4.0, 6.0)) for i in range(8)]
    table = coverage_table(records, MODEL, (4,), 50).split("\n")
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table]
    assert [r[0] for r in rows[2:]] == ["Adaptive-4"] * 6 + ["Fixed-4"] * 6
    # n_t = 1: the centre frame hits only the 10 s video's action, 1 of 8
    assert rows[2][1] == "14.000" and rows[2][2].startswith("12.5 [")
    assert rows[6][3] == "100.0 [100.0, 100.0]"  # the same in every replicate
    assert all(r[4] == "" for r in rows[2:8])  # adaptive: no difference with itself
    # a teacher frame every 10 s at 70 GFLOPs misses every action; adaptive there, between
    # 50 % (56 GFLOPs) and 25 % (84 GFLOPs), sees 37.5 %
    assert rows[12][1:3] == ["70.000", "0.0 [0.0, 0.0]"] and rows[12][4].startswith("-37.5 [")
    assert all(r[4].count("[") == 1 for r in rows[8:])
