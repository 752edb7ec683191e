from pathlib import Path

import pytest

from dkp.data.annotations.kinetics import kinetics_classes, load_kinetics, load_minikinetics
from dkp.data.annotations.records import AnnotationError
from tests.data.annotations.layouts import write_video

HEADER = "label,youtube_id,time_start,time_end,split,is_cc"


def write_csv(path: Path, *rows: str, header: str = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


@pytest.fixture
def k400(tmp_path):
    """Train and val CSVs over 3 classes; clips in the layouts copies use."""
    train = write_csv(
        tmp_path / "train.csv",
        "zumba,aaaaaaaaaaa,14,24,train,0",
        '"passing American football (in game)",bbbbbbbbbbb,0,10,train,0',
        "abseiling,ccccccccccc,5,15,train,0",
        "zumba,ddddddddddd,30,40,train,0",
        "abseiling,missingmiss,0,10,train,0",
    )
    val = write_csv(tmp_path / "val.csv", "zumba,eeeeeeeeeee,1,11,val,0")
    root = tmp_path / "videos"
    touch(root / "aaaaaaaaaaa_000014_000024.mp4")  # flat, full name
    touch(root / "passing American football (in game)" / "bbbbbbbbbbb.mkv")  # class folder
    touch(root / "abseiling" / "ccccccccccc_000005_000015.webm")
    touch(root / "zumba" / "ddddddddddd_000030_000040.mp4")
    touch(root / "eeeeeeeeeee.avi")
    return train, val, root


def test_classes_are_the_sorted_train_labels(k400):
    train, _, _ = k400
    assert kinetics_classes(train) == [
        "abseiling",
        "passing American football (in game)",
        "zumba",
    ]


def test_records_labels_durations_and_missing_clips(k400):
    train, val, root = k400
    result = load_kinetics(train, root)
    assert [r.video_id for r in result.records] == ["aaaaaaaaaaa", "bbbbbbbbbbb", "ccccccccccc",
                                                     "ddddddddddd"]  # fmt: skip
    assert [r.labels for r in result.records] == [(2,), (1,), (0,), (2,)]
    assert [r.path.name for r in result.records] == [
        "aaaaaaaaaaa_000014_000024.mp4",
        "bbbbbbbbbbb.mkv",
        "ccccccccccc_000005_000015.webm",
        "ddddddddddd_000030_000040.mp4",
    ]
    assert {r.duration for r in result.records} == {10.0}
    assert {r.subset for r in result.records} == {"training"}
    assert result.missing == ["missingmiss"]
    assert "1 missing on disk (missingmiss)" in result.summary()
    held_out = load_kinetics(val, root, class_file=train)
    assert held_out.classes == result.classes
    assert [(r.video_id, r.labels, r.subset) for r in held_out.records] == [
        ("eeeeeeeeeee", (2,), "validation")
    ]


def test_underscored_class_folders_are_found(tmp_path):
    csv = write_csv(tmp_path / "train.csv", "riding a bike,aaaaaaaaaaa,0,10,train,0")
    touch(tmp_path / "v" / "riding_a_bike" / "aaaaaaaaaaa_000000_000010.mp4")
    (record,) = load_kinetics(csv, tmp_path / "v").records
    assert record.path.parent.name == "riding_a_bike"


def test_test_csv_without_labels_gives_unlabelled_records(tmp_path, k400):
    train, _, _ = k400
    test = write_csv(
        tmp_path / "test.csv",
        "fffffffffff,0,10,test",
        header="youtube_id,time_start,time_end,split",
    )
    touch(tmp_path / "t" / "fffffffffff.mp4")
    (record,) = load_kinetics(test, tmp_path / "t", class_file=train).records
    assert record.labels == () and record.subset == "testing"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("zumba,xxxxxxxxxxx,ten,20,train,0", "not numbers"),
        ("zumba,xxxxxxxxxxx,20,10,train,0", "not after"),
        ("zumba,xxxxxxxxxxx,0,10,holdout,0", "split 'holdout'"),
        ("zumba,../../etc,0,10,train,0", "not a plain file name"),
        ("zumba,xxxxxxxxxxx,0,10", "expected 6 fields"),
        ("zumba,aaaaaaaaaaa,0,10,train,0", "repeated"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, row, message):
    csv = write_csv(tmp_path / "train.csv", "zumba,aaaaaaaaaaa,0,10,train,0", row)
    (tmp_path / "v").mkdir()
    with pytest.raises(AnnotationError, match=rf"train\.csv: line 3: .*{message}"):
        load_kinetics(csv, tmp_path / "v")
    skipped = load_kinetics(csv, tmp_path / "v", on_error="skip")
    assert len(skipped.skipped) == 1 and "line 3" in skipped.skipped[0][1]
    assert skipped.missing == ["aaaaaaaaaaa"]


def test_val_label_outside_the_train_classes_is_reported(tmp_path, k400):
    train, _, root = k400
    val = write_csv(tmp_path / "val2.csv", "yodelling,eeeeeeeeeee,1,11,val,0")
    with pytest.raises(AnnotationError, match=r"val2\.csv: line 2: label 'yodelling'"):
        load_kinetics(val, root, class_file=train)


def test_probed_durations_replace_the_csv_ones_and_broken_clips_are_skipped(tmp_path):
    csv = write_csv(
        tmp_path / "train.csv", "zumba,aaaaaaaaaaa,0,10,train,0", "zumba,bbbbbbbbbbb,0,10,train,0"
    )
    write_video(tmp_path / "v" / "aaaaaaaaaaa.mp4", count=6, fps=4)
    touch(tmp_path / "v" / "bbbbbbbbbbb.mp4")  # not a video
    result = load_kinetics(csv, tmp_path / "v", probe_durations=True)
    (record,) = result.records
    assert record.duration == pytest.approx(1.5) and record.fps == 4.0
    assert [vid for vid, _ in result.skipped] == ["bbbbbbbbbbb"]
    assert "bbbbbbbbbbb.mp4" in result.skipped[0][1]


@pytest.fixture
def mini(tmp_path, k400):
    train, val, root = k400
    lists = tmp_path / "mini"
    lists.mkdir()
    # Two of the three Kinetics classes are in the train list.
    (lists / "train.txt").write_text("ddddddddddd\nccccccccccc\naaaaaaaaaaa\n")
    (lists / "val.txt").write_text("eeeeeeeeeee\n")
    return train, val, root, lists


def test_minikinetics_classes_and_records_follow_the_lists(mini):
    train, val, root, lists = mini
    kwargs = {"train_id_file": lists / "train.txt", "train_annotation_file": train}
    result = load_minikinetics(lists / "train.txt", train, root, **kwargs)
    assert result.classes == ["abseiling", "zumba"]
    assert [(r.video_id, r.labels) for r in result.records] == [
        ("ddddddddddd", (1,)),
        ("ccccccccccc", (0,)),
        ("aaaaaaaaaaa", (1,)),
    ]
    held_out = load_minikinetics(lists / "val.txt", val, root, **kwargs)
    assert [(r.video_id, r.labels, r.subset) for r in held_out.records] == [
        ("eeeeeeeeeee", (1,), "validation")
    ]


def test_minikinetics_ids_absent_from_the_csv_name_list_and_line(mini):
    train, val, root, lists = mini
    (lists / "val.txt").write_text("eeeeeeeeeee\n\nnotinthecsv\n")
    kwargs = {"train_id_file": lists / "train.txt", "train_annotation_file": train}
    with pytest.raises(AnnotationError, match=r"val\.txt: line 3: 'notinthecsv' is not in"):
        load_minikinetics(lists / "val.txt", val, root, **kwargs)
    result = load_minikinetics(lists / "val.txt", val, root, on_error="skip", **kwargs)
    assert len(result.records) == 1 and [e for e, _ in result.skipped] == ["notinthecsv"]
