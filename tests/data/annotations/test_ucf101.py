from pathlib import Path

import pytest

from dkp.data.annotations.records import AnnotationError
from dkp.data.annotations.ucf101 import load_ucf101, ucf101_classes
from tests.data.annotations.layouts import write_video

CLASS_IND = "1 ApplyEyeMakeup\r\n2 Archery\r\n3 YoYo\r\n"


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


@pytest.fixture
def ucf(tmp_path):
    """Split lists 1 and 2 (CRLF, as released) and placeholder videos in both layouts."""
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text(CLASS_IND)
    (lists / "trainlist01.txt").write_text(
        "YoYo/v_YoYo_g08_c01.avi 3\r\n"
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\n"
        "Archery/v_Archery_g09_c02.avi 2\r\n"
        "\r\n"
    )
    (lists / "testlist01.txt").write_text(
        "Archery/v_Archery_g01_c01.avi\r\nYoYo/v_YoYo_g01_c01.avi\r\n"
    )
    (lists / "trainlist02.txt").write_text("Archery/v_Archery_g01_c01.avi 2\r\n")
    (lists / "testlist02.txt").write_text("YoYo/v_YoYo_g08_c01.avi\r\n")
    root = tmp_path / "UCF-101"
    touch(root / "YoYo" / "v_YoYo_g08_c01.avi")
    touch(root / "v_ApplyEyeMakeup_g08_c01.mp4")  # flat and transcoded
    touch(root / "Archery" / "v_Archery_g01_c01.avi")
    touch(root / "YoYo" / "v_YoYo_g01_c01.avi")
    return lists, root


def load(lists, root, **kwargs):
    return load_ucf101(lists, root, probe_durations=False, nominal_duration=7.0, **kwargs)


def test_classes_follow_class_ind(ucf):
    lists, _ = ucf
    assert ucf101_classes(lists / "classInd.txt") == ["ApplyEyeMakeup", "Archery", "YoYo"]


def test_train_and_test_lists_of_each_split(ucf):
    lists, root = ucf
    train = load(lists, root)
    assert [(r.video_id, r.labels) for r in train.records] == [
        ("v_YoYo_g08_c01", (2,)),
        ("v_ApplyEyeMakeup_g08_c01", (0,)),
    ]
    assert train.records[1].path == root / "v_ApplyEyeMakeup_g08_c01.mp4"
    assert train.missing == ["v_Archery_g09_c02"]
    assert {r.duration for r in train.records} == {7.0}
    test = load(lists, root, subset="testing")  # labels from the folder names
    assert [(r.video_id, r.labels, r.subset) for r in test.records] == [
        ("v_Archery_g01_c01", (1,), "testing"),
        ("v_YoYo_g01_c01", (2,), "testing"),
    ]
    assert [r.video_id for r in load(lists, root, split=2).records] == ["v_Archery_g01_c01"]
    assert [r.video_id for r in load(lists, root, split=2, subset="testing").records] == [
        "v_YoYo_g08_c01"
    ]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Archery/v_Archery_g02_c01.avi 3", "class number 3 does not match folder 'Archery'"),
        ("Archery/v_Archery_g02_c01.avi", "expected '<Class>/<video> <number>'"),
        ("Juggling/v_Juggling_g02_c01.avi 2", "folder 'Juggling' is not a class"),
        ("Archery/.. 2", "video id '..' is not a plain file name"),
    ],
)
def test_malformed_lines_name_file_and_line(ucf, line, message):
    lists, root = ucf
    (lists / "trainlist01.txt").write_text(f"YoYo/v_YoYo_g08_c01.avi 3\n{line}\n")
    with pytest.raises(AnnotationError, match=rf"trainlist01\.txt: line 2: {message}"):
        load(lists, root)
    result = load(lists, root, on_error="skip")
    assert [r.video_id for r in result.records] == ["v_YoYo_g08_c01"]
    assert len(result.skipped) == 1 and "line 2" in result.skipped[0][0]


def test_bad_class_index_is_refused(ucf):
    lists, root = ucf
    (lists / "classInd.txt").write_text("1 ApplyEyeMakeup\n3 Archery\n")
    with pytest.raises(AnnotationError, match=r"classInd\.txt: line 2: expected '2 <ClassName>'"):
        load(lists, root)


def test_durations_are_probed_by_default(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 Archery\n")
    (lists / "trainlist01.txt").write_text(
        "Archery/v_Archery_g08_c01.avi 1\nArchery/v_Archery_g08_c02.avi 1\n"
    )
    write_video(tmp_path / "v" / "Archery" / "v_Archery_g08_c01.avi", count=10, fps=4)
    touch(tmp_path / "v" / "Archery" / "v_Archery_g08_c02.avi")
    result = load_ucf101(lists, tmp_path / "v")
    assert [(r.video_id, r.duration) for r in result.records] == [("v_Archery_g08_c01", 2.5)]
    assert [vid for vid, _ in result.skipped] == ["v_Archery_g08_c02"]
    with pytest.raises(ValueError, match="probe_durations: true or a positive nominal_duration"):
        load_ucf101(lists, tmp_path / "v", probe_durations=False)
