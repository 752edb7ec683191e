import json
from pathlib import Path

import pytest

from dkp.data.annotations.activitynet import load_activitynet, taxonomy_classes, taxonomy_groups
from dkp.data.annotations.records import AnnotationError

TAXONOMY = [
    {"nodeId": 0, "nodeName": "Root", "parentId": None, "parentName": None},
    {"nodeId": 1, "nodeName": "Sports", "parentId": 0, "parentName": "Root"},
    {"nodeId": 2, "nodeName": "Household", "parentId": 0, "parentName": "Root"},
    {"nodeId": 5, "nodeName": "Walking the dog", "parentId": 2, "parentName": "Household"},
    {"nodeId": 3, "nodeName": "Skiing", "parentId": 1, "parentName": "Sports"},
    {"nodeId": 4, "nodeName": "Archery", "parentId": 1, "parentName": "Sports"},
]


def entry(subset, duration, *labels):
    return {
        "subset": subset,
        "duration": duration,
        "resolution": "640x360",
        "url": "https://www.youtube.com/watch?v=x",
        "annotations": [
            {"segment": [1.0 + i, 2.0 + i], "label": name} for i, name in enumerate(labels)
        ],
    }


def write(tmp_path: Path, database, taxonomy=TAXONOMY, raw: str | None = None) -> Path:
    path = tmp_path / "activity_net.v1-3.min.json"
    data = {"version": "VERSION 1.3", "taxonomy": taxonomy, "database": database}
    path.write_text(raw if raw is not None else json.dumps(data))
    (tmp_path / "videos").mkdir(exist_ok=True)
    return path


def touch(tmp_path: Path, *names: str) -> None:
    for name in names:
        (tmp_path / "videos" / name).write_bytes(b"x")


def test_classes_are_taxonomy_leaves_sorted_by_name():
    assert taxonomy_classes(TAXONOMY) == ["Archery", "Skiing", "Walking the dog"]
    assert taxonomy_classes(list(reversed(TAXONOMY))) == ["Archery", "Skiing", "Walking the dog"]


def test_groups_are_the_top_level_ancestors():
    deeper = [*TAXONOMY, {"nodeId": 6, "nodeName": "Ski jumping", "parentId": 3}]
    solo = [*TAXONOMY, {"nodeId": 7, "nodeName": "Chess", "parentId": 0}]
    assert taxonomy_groups(TAXONOMY) == {
        "Archery": "Sports", "Skiing": "Sports", "Walking the dog": "Household"
    }  # fmt: skip
    # a leaf three levels down keeps its top-level group; one right under the root is its own
    assert taxonomy_groups(deeper)["Ski jumping"] == "Sports"
    assert "Skiing" not in taxonomy_groups(deeper)  # no longer a leaf
    assert taxonomy_groups(solo)["Chess"] == "Chess"


def test_groups_refuse_a_cyclic_or_broken_taxonomy():
    cycle = [
        {"nodeId": 1, "nodeName": "A", "parentId": 2},
        {"nodeId": 2, "nodeName": "B", "parentId": 1},
        {"nodeId": 3, "nodeName": "Leaf", "parentId": 1},
    ]
    with pytest.raises(AnnotationError, match="f.json: taxonomy has a cycle through 'Leaf'"):
        taxonomy_groups(cycle, "f.json: taxonomy")
    with pytest.raises(AnnotationError, match="without nodeId/nodeName/parentId"):
        taxonomy_groups([{"nodeName": "A"}])


def test_records_subsets_multilabel_and_file_lookup(tmp_path):
    ann = write(
        tmp_path,
        {
            "aaa": entry("training", 12.5, "Skiing"),
            "bbb": entry("training", 30.0, "Walking the dog", "Archery"),
            "ccc": entry("validation", 8.0, "Archery"),
            "ddd": entry("testing", 9.0),
        },
    )
    touch(tmp_path, "v_aaa.mp4", "bbb.webm", "v_ccc.mkv", "v_ddd.avi")
    train = load_activitynet(ann, tmp_path / "videos", subsets=["training"])
    assert train.classes == ["Archery", "Skiing", "Walking the dog"]
    by_id = {r.video_id: r for r in train.records}
    assert set(by_id) == {"aaa", "bbb"}
    assert by_id["aaa"].labels == (1,)
    assert by_id["aaa"].duration == 12.5
    assert by_id["aaa"].path.name == "v_aaa.mp4"
    assert by_id["bbb"].labels == (0, 2)
    assert by_id["bbb"].path.name == "bbb.webm"
    assert by_id["bbb"].segments == ((1.0, 2.0), (2.0, 3.0))
    both = load_activitynet(ann, tmp_path / "videos", subsets=["validation", "testing"])
    assert {(r.video_id, r.subset, r.labels) for r in both.records} == {
        ("ccc", "validation", (0,)),
        ("ddd", "testing", ()),
    }


def test_missing_files_are_counted_not_fatal(tmp_path):
    ann = write(tmp_path, {f"id{i}": entry("training", 5.0, "Skiing") for i in range(10)})
    touch(tmp_path, *[f"v_id{i}.mp4" for i in range(7)])
    result = load_activitynet(ann, tmp_path / "videos")
    assert len(result.records) == 7
    assert sorted(result.missing) == ["id7", "id8", "id9"]
    assert "3 missing on disk" in result.summary()


@pytest.mark.parametrize(
    "bad, message",
    [
        (entry("training", 5.0, "Curling"), "unknown label 'Curling'"),
        (entry("training", -3.0, "Skiing"), "duration -3.0"),
        (entry("training", "long", "Skiing"), "duration 'long'"),
        ({"subset": "training", "duration": 4.0, "annotations": [{"label": "Skiing"}]}, "segment"),
    ],
)
def test_bad_entries_name_the_video(tmp_path, bad, message):
    ann = write(tmp_path, {"good": entry("training", 5.0, "Skiing"), "badvid": bad})
    touch(tmp_path, "v_good.mp4", "v_badvid.mp4")
    with pytest.raises(AnnotationError, match="badvid") as err:
        load_activitynet(ann, tmp_path / "videos")
    assert message in str(err.value)
    skipped = load_activitynet(ann, tmp_path / "videos", on_error="skip")
    assert [r.video_id for r in skipped.records] == ["good"]
    assert [vid for vid, _ in skipped.skipped] == ["badvid"]


@pytest.mark.parametrize("video_id", ["../etc", "a/b", "/abs", ".."])
def test_ids_escaping_the_root_are_refused(tmp_path, video_id):
    ann = write(tmp_path, {video_id: entry("training", 5.0, "Skiing")})
    with pytest.raises(AnnotationError, match="not a plain file name"):
        load_activitynet(ann, tmp_path / "videos")


def test_duplicate_ids_are_an_error(tmp_path):
    raw = (
        '{"version": "VERSION 1.3", "taxonomy": ' + json.dumps(TAXONOMY) + ', "database": {'
        '"dup": ' + json.dumps(entry("training", 5.0, "Skiing")) + ", "
        '"dup": ' + json.dumps(entry("training", 6.0, "Archery")) + "}}"
    )
    ann = write(tmp_path, {}, raw=raw)
    with pytest.raises(AnnotationError, match="duplicate key 'dup'"):
        load_activitynet(ann, tmp_path / "videos")


def test_malformed_json_and_missing_root(tmp_path):
    ann = write(tmp_path, {}, raw="{not json")
    with pytest.raises(AnnotationError, match="not valid JSON"):
        load_activitynet(ann, tmp_path / "videos")
    ann = write(tmp_path, {"a": entry("training", 5.0, "Skiing")})
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_activitynet(ann, tmp_path / "nowhere")
    with pytest.raises(ValueError, match="subsets"):
        load_activitynet(ann, tmp_path / "videos", subsets=["train"])
