"""Bad annotation files, all in one place: each is an AnnotationError naming the file and the
entry, or with ``on_error="skip"`` a warning and an entry in ``RecordSet.skipped``."""

from __future__ import annotations

import json

import pytest

from dkp.data.annotations.activitynet import load_activitynet
from dkp.data.annotations.collector import default_prober
from dkp.data.annotations.kinetics import load_kinetics
from dkp.data.annotations.records import MAX_DURATION, AnnotationError
from tests.data.annotations.test_activitynet import TAXONOMY, entry
from tests.data.annotations.test_kinetics import write_csv

GOOD = json.dumps(entry("training", 5.0, "Skiing"))


def activitynet_file(tmp_path, bad_entry: str, bad_id: str = "badvid"):
    """An annotation file with one good video and ``bad_entry`` (raw JSON) under ``bad_id``."""
    path = tmp_path / "activity_net.v1-3.min.json"
    database = f'{{"good": {GOOD}, {json.dumps(bad_id)}: {bad_entry}}}'
    path.write_text(f'{{"taxonomy": {json.dumps(TAXONOMY)}, "database": {database}}}')
    (tmp_path / "videos").mkdir()
    for name in ("good", bad_id.replace("/", "_")):
        (tmp_path / "videos" / f"v_{name}.mp4").write_bytes(b"x")
    return path


ENTRY_CASES = {
    "missing fields": ('{"subset": "training", "annotations": []}', "duration None"),
    "no segment": (
        '{"subset": "training", "duration": 4.0, "annotations": [{"label": "Skiing"}]}',
        "lacks 'label' or 'segment'",
    ),
    "unknown label": (json.dumps(entry("training", 5.0, "Curling")), "unknown label 'Curling'"),
    "absurd duration": (json.dumps(entry("training", 1e9, "Skiing")), "1000000000.0 s is over"),
    "NaN duration": (
        '{"subset": "training", "duration": NaN, "annotations": []}',
        "duration nan is not a positive number",
    ),
    "negative duration": (json.dumps(entry("training", -1, "Skiing")), "duration -1"),
}


@pytest.mark.parametrize("case", sorted(ENTRY_CASES))
def test_activitynet_bad_entries_raise_or_skip(tmp_path, case):
    bad, message = ENTRY_CASES[case]
    path = activitynet_file(tmp_path, bad)
    with pytest.raises(AnnotationError) as caught:
        load_activitynet(path, tmp_path / "videos")
    assert str(caught.value).startswith(f"{path}: video 'badvid': ")
    assert message in str(caught.value)
    kept = load_activitynet(path, tmp_path / "videos", on_error="skip")
    assert [r.video_id for r in kept.records] == ["good"]
    assert [vid for vid, _ in kept.skipped] == ["badvid"] and message in kept.skipped[0][1]


@pytest.mark.parametrize("bad_id", ["../escape", "..", "a/../../b", "/etc/passwd"])
def test_activitynet_ids_escaping_the_root_are_refused(tmp_path, bad_id):
    path = activitynet_file(tmp_path, GOOD, bad_id)
    with pytest.raises(AnnotationError, match="is not a plain file name"):
        load_activitynet(path, tmp_path / "videos")
    kept = load_activitynet(path, tmp_path / "videos", on_error="skip")
    assert [vid for vid, _ in kept.skipped] == [bad_id]


def test_activitynet_file_level_errors(tmp_path):
    path = tmp_path / "a.json"
    for raw, message in (
        ("{not json", "not valid JSON"),
        ('{"taxonomy": []}', "no 'database' object"),
        (f'{{"taxonomy": [], "database": {{"x": {GOOD}, "x": {GOOD}}}}}', "duplicate key 'x'"),
        ('{"taxonomy": [{"nodeName": "a"}], "database": {}}', "taxonomy node without"),
    ):
        path.write_text(raw)
        with pytest.raises(AnnotationError, match=message) as caught:
            load_activitynet(path, tmp_path)
        assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("zumba,xxxxxxxxxxx,0,1000000000,train,0", "over 86400 s"),
        ("zumba,xxxxxxxxxxx,nan,10,train,0", "not after"),
        ("zumba,../xxxxxxxxx,0,10,train,0", "not a plain file name"),
        ('zumba,"xxxxxxxxxxx,0,10,train,0', "expected 6 fields"),
        ("zumba,aaaaaaaaaaa,0,10,train,0", "repeated"),
    ],
)
def test_kinetics_bad_rows_name_file_and_line(tmp_path, row, message):
    csv = write_csv(tmp_path / "train.csv", "zumba,aaaaaaaaaaa,0,10,train,0", row)
    (tmp_path / "v").mkdir()
    with pytest.raises(AnnotationError, match=rf"train\.csv: line 3: .*{message}"):
        load_kinetics(csv, tmp_path / "v")
    kept = load_kinetics(csv, tmp_path / "v", on_error="skip")
    assert len(kept.skipped) == 1 and "line 3" in kept.skipped[0][1]


def test_kinetics_missing_columns_are_named(tmp_path):
    csv = write_csv(tmp_path / "train.csv", "zumba,aaaaaaaaaaa,0", header="label,youtube_id,x")
    with pytest.raises(AnnotationError, match=r"train\.csv.*time_start"):
        load_kinetics(csv, tmp_path)


def test_probed_durations_are_bounded_too():
    assert MAX_DURATION == 86400.0
    assert default_prober(True).max_duration == MAX_DURATION
