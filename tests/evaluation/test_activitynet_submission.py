import json
from pathlib import Path

import pytest

from dkp.data.annotations.records import AnnotationError
from dkp.evaluation.activitynet_submission import (
    build_submission,
    class_ap,
    load_submission,
    score_submission,
    submission_id,
    write_submission,
)


def annotated(subset, *labels):
    return {
        "subset": subset,
        "duration": 10.0,
        "annotations": [{"segment": [0.0, 5.0], "label": name} for name in labels],
    }


def write_ground_truth(folder: Path) -> Path:
    """Five labelled validation videos (one 2-label), one training video, one unlabelled."""
    database = {
        "aaa": annotated("validation", "A"),
        "bbb": annotated("validation", "B"),
        "ccc": annotated("validation", "A", "B"),
        "ddd": annotated("validation", "C"),
        "eee": annotated("training", "A"),  # other subset: ignored
        "fff": annotated("validation"),  # no labels: left out, as officially
    }
    path = folder / "gt.json"
    path.write_text(json.dumps({"version": "VERSION 1.3", "taxonomy": [], "database": database}))
    return path


def write_example_submission(folder: Path) -> Path:
    predictions = [
        ("aaa", [("A", 0.9), ("B", 0.05), ("C", 0.05)]),
        ("bbb", [("A", 0.6), ("B", 0.3), ("C", 0.1)]),
        ("ccc", [("B", 0.5), ("A", 0.4), ("C", 0.1)]),
        ("ddd", [("A", 0.7), ("B", 0.2)]),
        ("zzz", [("A", 0.8)]),  # not a ground-truth video
    ]
    return write_submission(folder / "submission.json", build_submission(predictions))


@pytest.fixture
def ground_truth(tmp_path: Path) -> Path:
    return write_ground_truth(tmp_path)


@pytest.fixture
def submission(tmp_path: Path) -> Path:
    return write_example_submission(tmp_path)


def test_writer_gives_the_official_layout(tmp_path):
    sub = build_submission(
        [("v_abcdefghijk", [("Archery", 0.75)]), ("v_abcdefghi", [("Skiing", 0.5)])],
        external_data=True,
        details="ImageNet-pretrained backbone",
    )
    assert sub == {
        "version": "VERSION 1.3",
        "results": {
            "abcdefghijk": [{"label": "Archery", "score": 0.75}],
            # 11 characters: a YouTube id that starts with v_, kept whole.
            "v_abcdefghi": [{"label": "Skiing", "score": 0.5}],
        },
        "external_data": {"used": True, "details": "ImageNet-pretrained backbone"},
    }
    path = write_submission(tmp_path / "out" / "s.json", sub)
    assert load_submission(path) == {
        "abcdefghijk": [("Archery", 0.75)],
        "v_abcdefghi": [("Skiing", 0.5)],
    }
    assert submission_id("abcdefghijk") == "abcdefghijk"


def test_scores_as_the_official_evaluation(submission, ground_truth):
    # Class A (positives aaa, ccc), ranked: aaa .9 TP, zzz .8 FP, ddd .7 FP, bbb .6 FP, ccc .4 TP
    #   recall .5 .5 .5 .5 1; precision 1 .5 .33 .25 .4 -> made monotone 1 .5 .4 .4 .4
    #   AP = .5 * 1 + .5 * .4 = .7
    # Class B (bbb, ccc): ccc .5 TP, bbb .3 TP, ddd .2 FP, aaa .05 FP -> AP = .5 * 1 + .5 * 1 = 1
    # Class C (ddd): ddd never submits C -> recall stays 0 -> AP = 0
    # mAP = (.7 + 1 + 0) / 3
    # hit@3: aaa, bbb, ccc have a true label in their top 3; ddd (A, B) does not -> 3 / 4
    result = score_submission(submission, ground_truth)
    assert result.interpolated_map == pytest.approx((0.7 + 1.0 + 0.0) / 3)
    assert result.hit_at_k == 0.75 and result.k == 3
    assert (result.num_videos, result.num_classes, result.num_submitted) == (4, 3, 5)
    # Ours over the ground-truth videos, unsubmitted labels scoring 0:
    # A: aaa .9 P, ddd .7, bbb .6, ccc .4 P -> (1/1 + 2/4) / 2 = .75; B: 1; C: ddd last of 4 -> .25
    assert result.non_interpolated_map == pytest.approx((0.75 + 1.0 + 0.25) / 3)
    # hit@1: aaa (A) and ccc (B) right, bbb (A) and ddd (A) wrong.
    assert score_submission(submission, ground_truth, k=1).hit_at_k == 0.5


def test_a_video_claims_a_class_once():
    # Positives a, b; ranked a .9 TP, a .8 FP (already claimed), b .7 TP
    #   recall .5 .5 1; precision 1 .5 .67 -> monotone 1 .67 .67 -> AP = .5 * 1 + .5 * 2/3
    ap = class_ap({"a", "b"}, [("a", 0.9), ("a", 0.8), ("b", 0.7)])
    assert ap == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert class_ap({"a"}, []) == 0.0


def test_malformed_submission_is_named(tmp_path, ground_truth):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": "VERSION 1.3", "results": {"aaa": [{"label": "A"}]}}))
    with pytest.raises(AnnotationError, match=r"bad\.json: video 'aaa'"):
        score_submission(bad, ground_truth)
