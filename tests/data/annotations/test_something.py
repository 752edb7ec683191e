import json
from pathlib import Path

import pytest

from dkp.data.annotations.records import AnnotationError
from dkp.data.annotations.something import (
    load_something_v1,
    load_something_v2,
    something_v1_classes,
    something_v2_classes,
)
from tests.data.annotations.layouts import write_frames, write_video

LABELS_V2 = {
    "Putting something on a surface": "1",
    "Holding something next to something": "0",
    "Pushing something from left to right": "2",
}


def entry(video_id, template, filled="x"):
    return {"id": video_id, "label": filled, "template": template, "placeholders": [filled]}


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


@pytest.fixture
def v2(tmp_path):
    labels = tmp_path / "something-something-v2-labels.json"
    labels.write_text(json.dumps(LABELS_V2))
    train = tmp_path / "something-something-v2-train.json"
    train.write_text(
        json.dumps(
            [
                entry("78687", "Putting [something] on a surface", "putting a pen on a desk"),
                entry("42326", "Holding [something] next to [something]"),
                entry("3694", "Pushing [something] from left to right"),
                entry("1", "Putting [something] on a surface"),
            ]
        )
    )
    root = tmp_path / "20bn-something-something-v2"
    for name in ("78687.webm", "42326.webm", "3694.mp4"):
        touch(root / name)
    return labels, train, root


def load_v2(annotation, labels, root, **kwargs):
    return load_something_v2(
        annotation, labels, root, probe_durations=False, nominal_duration=4.0, **kwargs
    )


def test_v2_classes_follow_the_label_indices(v2):
    labels, _, _ = v2
    assert something_v2_classes(labels) == [
        "Holding something next to something",
        "Putting something on a surface",
        "Pushing something from left to right",
    ]


def test_v2_templates_without_brackets_give_the_class(v2):
    labels, train, root = v2
    result = load_v2(train, labels, root)
    assert [(r.video_id, r.labels) for r in result.records] == [
        ("78687", (1,)),
        ("42326", (0,)),
        ("3694", (2,)),
    ]
    assert result.records[0].path.name == "78687.webm"
    assert result.missing == ["1"]
    assert {(r.subset, r.duration) for r in result.records} == {("training", 4.0)}


def test_v2_unknown_template_names_file_and_entry(v2, tmp_path):
    labels, _, root = v2
    bad = tmp_path / "validation.json"
    bad.write_text(json.dumps([entry("78687", "Putting [something] on a surface"),
                               entry("42326", "Juggling [something]")]))  # fmt: skip
    with pytest.raises(
        AnnotationError,
        match=r"validation\.json: entry 1 \(id '42326'\): template 'Juggling \[something\]'",
    ):
        load_v2(bad, labels, root, subset="validation")
    result = load_v2(bad, labels, root, subset="validation", on_error="skip")
    assert [r.video_id for r in result.records] == ["78687"]
    assert len(result.skipped) == 1 and "entry 1" in result.skipped[0][0]


def test_v2_test_entries_have_only_ids(v2, tmp_path):
    labels, _, root = v2
    test = tmp_path / "test.json"
    test.write_text(json.dumps([{"id": "3694"}]))
    (record,) = load_v2(test, labels, root, subset="testing").records
    assert record.labels == ()
    with pytest.raises(AnnotationError, match=r"entry 0 \(id '3694'\): no 'template'"):
        load_v2(test, labels, root, subset="validation")


def test_v2_durations_are_probed_from_webm(v2, tmp_path):
    labels, _, _ = v2
    root = tmp_path / "webm"
    write_video(root / "78687.webm", count=12, fps=4)
    train = tmp_path / "one.json"
    train.write_text(json.dumps([entry("78687", "Putting [something] on a surface")]))
    (record,) = load_something_v2(train, labels, root).records
    assert record.duration == pytest.approx(3.0) and record.fps == 4.0


def test_v2_label_indices_must_run_from_zero(tmp_path):
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"A": "0", "B": "2"}))
    with pytest.raises(AnnotationError, match="do not run 0..1"):
        something_v2_classes(labels)


@pytest.fixture
def v1(tmp_path):
    labels = tmp_path / "something-something-v1-labels.csv"
    labels.write_text("Holding something\nPutting something on a surface\nPushing something\n")
    train = tmp_path / "something-something-v1-train.csv"
    train.write_text("100218;Pushing something\n24;Holding something\n7;Holding something\n")
    root = tmp_path / "20bn-something-something-v1"
    write_frames(root / "100218", count=6)
    write_frames(root / "24", count=18)
    return labels, train, root


def test_v1_classes_are_in_line_order(v1):
    labels, _, _ = v1
    assert something_v1_classes(labels) == [
        "Holding something",
        "Putting something on a surface",
        "Pushing something",
    ]


def test_v1_frame_folders_give_duration_frames_over_fps(v1):
    labels, train, root = v1
    result = load_something_v1(train, labels, root)
    assert [(r.video_id, r.labels, r.duration) for r in result.records] == [
        ("100218", (2,), 0.5),  # 6 frames at 12 fps
        ("24", (0,), 1.5),
    ]
    assert result.records[0].path == root / "100218"
    assert result.missing == ["7"]
    slow = load_something_v1(train, labels, root, fps=6.0)
    assert [r.duration for r in slow.records] == [1.0, 3.0]


def test_v1_empty_frame_folder_is_skipped(v1):
    labels, train, root = v1
    (root / "7").mkdir()
    result = load_something_v1(train, labels, root)
    assert len(result.records) == 2 and [vid for vid, _ in result.skipped] == ["7"]
    assert "no frames" in result.skipped[0][1]


def test_v1_malformed_lines_name_file_and_line(v1):
    labels, train, root = v1
    train.write_text("100218;Pushing something\n24;Juggling\n")
    with pytest.raises(AnnotationError, match=r"v1-train\.csv: line 2: class 'Juggling'"):
        load_something_v1(train, labels, root)
    train.write_text("100218;Pushing something\n\n24\n")
    with pytest.raises(AnnotationError, match=r"v1-train\.csv: line 3: expected '<id>;<class>'"):
        load_something_v1(train, labels, root)
    result = load_something_v1(train, labels, root, on_error="skip")
    assert [r.video_id for r in result.records] == ["100218"] and len(result.skipped) == 1
