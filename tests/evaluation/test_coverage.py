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
    assert out == {"gflops": 14.0, "student": 0.0, "teacher": 50.0}
    # Fixed interval, a teacher frame every 8 s: the 40 s video gets 5 (at 4, 12, .. s) and 20
    # student frames 2 s apart, the first at 1 s, inside the action.
    fixed = segment_coverage(records, build_sampling("fixed", r_t=8.0, ratio=4), MODEL)
    assert fixed == {"gflops": pytest.approx((14.0 + 70.0) / 2), "student": 50.0, "teacher": 50.0}


def test_needs_annotated_segments():
    bare = VideoRecord("v", None, 10.0, (0,), "testing")
    with pytest.raises(ValueError, match="no video has annotated segments"):
        segment_coverage([bare], build_sampling("adaptive", n_t=1, ratio=4), MODEL)
