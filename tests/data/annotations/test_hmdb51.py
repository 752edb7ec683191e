from pathlib import Path

import pytest

from dkp.data.annotations.hmdb51 import hmdb51_split_files, load_hmdb51
from dkp.data.annotations.records import AnnotationError


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


@pytest.fixture
def hmdb(tmp_path):
    """Split-1 files of three classes (written out of order) plus a split-2 file."""
    splits = tmp_path / "testTrainMulti_7030_splits"
    splits.mkdir()
    (splits / "wave_test_split1.txt").write_text("wave_a.avi 1 \nwave_b.avi 2 \nwave_c.avi 0 \n")
    (splits / "brush_hair_test_split1.txt").write_text(
        "#20_Brush_hair_u_nm_np1_ba_goo_0.avi 2 \nApril_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \n"
    )
    (splits / "cartwheel_test_split1.txt").write_text("cart_a.avi 1 \ncart_gone.avi 1 \n")
    (splits / "wave_test_split2.txt").write_text("wave_a.avi 2 \nwave_b.avi 1 \n")
    root = tmp_path / "videos"
    for rel in (
        "wave/wave_a.avi",
        "wave/wave_b.avi",
        "wave/wave_c.avi",
        "brush_hair/#20_Brush_hair_u_nm_np1_ba_goo_0.avi",
        "April_09_brush_hair_u_nm_np1_ba_goo_0.mp4",  # flat and transcoded
        "cartwheel/cart_a.avi",
    ):
        touch(root / rel)
    return splits, root


def load(splits, root, **kwargs):
    return load_hmdb51(splits, root, probe_durations=False, nominal_duration=3.0, **kwargs)


def test_classes_are_the_sorted_class_file_names(hmdb):
    splits, _ = hmdb
    assert list(hmdb51_split_files(splits)) == ["brush_hair", "cartwheel", "wave"]
    assert list(hmdb51_split_files(splits, split=2)) == ["wave"]


def test_flags_pick_train_and_test_videos(hmdb):
    splits, root = hmdb
    train = load(splits, root)
    assert train.classes == ["brush_hair", "cartwheel", "wave"]
    assert [(r.video_id, r.labels) for r in train.records] == [
        ("April_09_brush_hair_u_nm_np1_ba_goo_0", (0,)),
        ("cart_a", (1,)),
        ("wave_a", (2,)),
    ]
    assert train.missing == ["cart_gone"]
    assert {(r.subset, r.duration) for r in train.records} == {("training", 3.0)}
    test = load(splits, root, subset="testing")
    assert [(r.video_id, r.labels) for r in test.records] == [
        ("#20_Brush_hair_u_nm_np1_ba_goo_0", (0,)),
        ("wave_b", (2,)),
    ]
    # wave_c (flag 0) is in neither subset.
    assert "wave_c" not in {r.video_id for r in train.records + test.records}


def test_malformed_lines_name_file_and_line(hmdb):
    splits, root = hmdb
    (splits / "wave_test_split1.txt").write_text("wave_a.avi 1\nwave_b.avi 3\n")
    with pytest.raises(AnnotationError, match=r"wave_test_split1\.txt: line 2: expected"):
        load(splits, root)
    result = load(splits, root, on_error="skip")
    assert [r.video_id for r in result.records][-1] == "wave_a"
    assert len(result.skipped) == 1 and "wave_test_split1.txt: line 2" in result.skipped[0][0]


def test_missing_split_files_are_a_clear_error(tmp_path):
    (tmp_path / "v").mkdir()
    with pytest.raises(AnnotationError, match=r"no '\*_test_split1\.txt' split files"):
        load(tmp_path, tmp_path / "v")
