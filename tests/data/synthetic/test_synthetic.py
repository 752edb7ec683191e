import itertools
import json
import math
from collections import Counter
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
from hydra.utils import instantiate

from dkp.data.annotations.activitynet import load_activitynet, taxonomy_classes
from dkp.data.annotations.records import SUBSETS
from dkp.data.synthetic import config as syn
from dkp.data.synthetic.config import (
    ANNOTATION_NAME,
    BRIEF_GROUP,
    FINE_GROUP,
    MANIFEST_NAME,
    SyntheticConfig,
    class_groups,
    class_names,
)
from dkp.data.synthetic.plan import event_hit_share, plan_dataset
from dkp.data.synthetic.render import object_positions
from dkp.data.synthetic.writer import (
    GENERATOR_VERSION,
    dataset_matches,
    ensure_dataset,
    generate,
    taxonomy,
    video_path,
)
from dkp.runtime.config import compose

TINY = SyntheticConfig(
    fine_classes=2,
    brief_classes=2,
    coarse_classes=0,
    videos_per_class=(2, 2, 2),
    min_duration=2.0,
    max_duration=6.0,
    multi_label_fraction=0.0,
)
# One video per class of all 12 default classes, long enough to hold an object and an event.
DESIGN = SyntheticConfig(  # flashes every 1.5 s: enough events in 3-6 s videos to check them
    seed=5,
    videos_per_class=(1, 0, 0),
    min_duration=3.0,
    max_duration=6.0,
    multi_label_fraction=0,
    event_spacing=1.5,
)
COLOURS = dict(syn.BRIEF_COLOURS)
TEXTURES = dict(syn.FINE_TEXTURES)
COARSE = dict(syn.COARSE_TINTS[: SyntheticConfig().coarse_classes])


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }


def mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def decode(path: Path, size: int) -> np.ndarray:
    """The real decode path: swscale's resize to ``size`` x ``size`` RGB."""
    with av.open(str(path)) as container:
        return np.stack(
            [
                f.to_ndarray(width=size, height=size, format="rgb24")
                for f in container.decode(video=0)
            ]
        ).astype(np.float64)


def colour_fraction(frames: np.ndarray, rgb) -> np.ndarray:
    """Per frame, the fraction of pixels within 50 (every channel) of ``rgb``."""
    return (np.abs(frames - np.array(rgb)).max(axis=-1) < 50).mean(axis=(1, 2))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    generate(out, TINY, workers=1)
    return out


@pytest.fixture(scope="module")
def design(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("design")
    generate(out, DESIGN, workers=1)
    return out


# ------------------------------------------------------------------------------ determinism


def test_same_seed_gives_byte_identical_files_whatever_the_workers(tiny, tmp_path):
    again = generate(tmp_path / "again", TINY, workers=2)
    assert again == tmp_path / "again" / ANNOTATION_NAME
    first, second = files(tiny), files(tmp_path / "again")
    assert len(first) == TINY.num_videos + 1 == 25
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], name


def test_another_seed_gives_other_videos_and_annotations(tiny, tmp_path):
    generate(tmp_path, replace(TINY, seed=1), workers=1)
    first, other = files(tiny), files(tmp_path)
    assert first[ANNOTATION_NAME] != other[ANNOTATION_NAME]
    assert not set(first.values()) & set(other.values())


# ------------------------------------------------------------------------------ annotations


def test_annotation_file_has_the_activitynet_layout(tiny):
    data = json.loads((tiny / ANNOTATION_NAME).read_text())
    assert list(data) == ["version", "taxonomy", "database"]
    assert data["version"] == "VERSION 1.3"
    nodes = {n["nodeName"]: n for n in data["taxonomy"]}
    assert nodes["Root"]["parentId"] is None and nodes["Root"]["parentName"] is None
    for group in (FINE_GROUP, BRIEF_GROUP):
        assert nodes[group]["parentId"] == nodes["Root"]["nodeId"]
    for name, group in class_groups(TINY):
        assert nodes[name]["parentId"] == nodes[group]["nodeId"]
        assert nodes[name]["parentName"] == group
    assert len(data["taxonomy"]) == 1 + 2 + 4
    assert len({n["nodeId"] for n in data["taxonomy"]}) == len(data["taxonomy"])
    assert len(data["database"]) == 24
    for vid, entry in data["database"].items():
        assert len(vid) == 11 and not vid.startswith("-")
        assert set(vid) <= set(syn.ID_ALPHABET)
        assert list(entry) == ["subset", "duration", "resolution", "url", "annotations"]
        assert entry["resolution"] == "64x64"
        assert entry["url"] == f"https://www.youtube.com/watch?v={vid}"
        assert (tiny / "videos" / f"v_{vid}.mp4").is_file()
    assert sorted(p.name for p in (tiny / "videos").iterdir()) == sorted(
        f"v_{vid}.mp4" for vid in data["database"]
    )


def test_reader_loads_classes_subsets_labels_and_real_durations(tiny):
    names = class_names(TINY)
    assert names == ["Green flash", "Horizontal stripes", "Red flash", "Vertical stripes"]
    data = json.loads((tiny / ANNOTATION_NAME).read_text())["database"]
    rs = load_activitynet(tiny / ANNOTATION_NAME, tiny / "videos", subsets=SUBSETS)
    assert rs.classes == names
    assert rs.missing == [] and rs.skipped == []
    assert len(rs.records) == 24
    counts = Counter((r.subset, r.labels) for r in rs.records)
    assert counts == {(s, (c,)): 2 for s in SUBSETS for c in range(4)}
    for r in rs.records:
        assert r.path == tiny / "videos" / f"v_{r.video_id}.mp4"
        assert [names.index(a["label"]) for a in data[r.video_id]["annotations"]] == list(r.labels)
        with av.open(str(r.path)) as container:
            measured = container.duration / 1e6
            frames = sum(1 for _ in container.decode(video=0))
        assert abs(r.duration - measured) <= 1 / TINY.fps
        assert abs(r.duration - frames / TINY.fps) <= 1 / TINY.fps
        assert TINY.min_duration - 0.1 <= r.duration <= TINY.max_duration + 0.1
        ((start, end),) = r.segments
        assert 0 <= start < end <= r.duration


def test_multi_label_videos_have_two_segments_of_two_classes(tmp_path):
    config = replace(TINY, multi_label_fraction=1.0, videos_per_class=(1, 1, 0))
    generate(tmp_path, config, workers=1)
    rs = load_activitynet(tmp_path / ANNOTATION_NAME, tmp_path / "videos", subsets=SUBSETS)
    assert len(rs.records) == 8
    for r in rs.records:
        assert len(r.labels) == 2
        (s1, e1), (s2, e2) = r.segments
        assert 0 <= s1 < e1 <= s2 < e2 <= r.duration
    # The primary labels stay balanced.
    primary = Counter(p.label for p in plan_dataset(config))
    assert primary == {name: 2 for name in class_names(config)}


def test_one_group_only_still_makes_a_valid_taxonomy():
    config = replace(TINY, fine_classes=0, brief_classes=3)
    nodes = taxonomy(config)
    assert [n["nodeName"] for n in nodes] == [
        "Root",
        BRIEF_GROUP,
        "Red flash",
        "Green flash",
        "Blue flash",
    ]
    assert taxonomy_classes(nodes) == class_names(config)
    assert class_names(config) == ["Blue flash", "Green flash", "Red flash"]


# --------------------------------------------------------------------------- default's plan


def test_default_plan_is_balanced_untrimmed_and_has_a_few_multi_label_videos():
    config = SyntheticConfig()
    plans = plan_dataset(config)
    assert len(plans) == 2064 and len({p.video_id for p in plans}) == 2064
    assert len(syn.CLASS_NAMES) == 12
    assert Counter((p.subset, p.label) for p in plans) == {
        (s, c): n for s, n in zip(SUBSETS, (40, 24, 108), strict=True) for c in syn.CLASS_NAMES
    }
    durations = np.array([p.num_frames / config.fps for p in plans])
    assert durations.min() >= 5 and durations.max() <= 60
    assert 10 < np.median(durations) < 25  # log-uniform in [5, 60]: median ~17 s
    multi = [p for p in plans if len(p.segments) == 2]
    assert len(multi) / len(plans) == pytest.approx(config.multi_label_fraction, abs=0.01)
    brief = {name for name, group in class_groups(config) if group == BRIEF_GROUP}
    for p in plans:
        covered = sum(s.end - s.start for s in p.segments) / p.num_frames
        if p.num_frames < config.short_duration * config.fps and len(p.segments) == 1:
            assert 0.65 <= covered <= 0.96, p
        elif len(p.segments) == 1:
            (s,) = p.segments
            assert 4 * config.fps <= s.end - s.start <= 8 * config.fps
        for s in p.segments:
            assert 0 <= s.start < s.end <= p.num_frames
            assert (len(s.events) >= 1) == (s.label in brief)
            assert all(s.start <= e and e + config.event_frames <= s.end for e in s.events)
            # In order, and never touching: at least one frame without a flash between two.
            assert all(b - a > config.event_frames for a, b in itertools.pairwise(s.events))
    # Brief events recur: about one per event_spacing seconds of action.
    segments = [s for p in plans for s in p.segments if s.events]
    per_second = sum(len(s.events) for s in segments) / sum(s.end - s.start for s in segments)
    assert per_second * config.fps * config.event_spacing == pytest.approx(1.0, abs=0.05)
    long_actions = [s for s in segments if s.end - s.start >= 6 * config.fps]
    assert min(len(s.events) for s in long_actions) >= math.floor(6 / config.event_spacing)
    long = [p for p in plans if p.num_frames >= 30 * config.fps and len(p.segments) == 1]
    assert long and all(sum(s.end - s.start for s in p.segments) < 0.3 * p.num_frames for p in long)


def test_each_class_spans_the_durations_evenly_in_every_subset():
    """Stratified draws: the n videos of a class in a subset fall one in each 1/n of the
    log-duration range (up to the rounding to whole frames), whatever the seed."""
    for seed in (0, 1):
        config = replace(SyntheticConfig(), seed=seed)
        span = math.log(config.max_duration / config.min_duration)
        shares: dict[tuple[str, str], list[float]] = {}
        for p in plan_dataset(config):
            share = math.log(p.num_frames / config.fps / config.min_duration) / span
            shares.setdefault((p.subset, p.label), []).append(share)
        assert len(shares) == 3 * 12
        for group in shares.values():
            n = len(group)
            centres = (np.arange(n) + 0.5) / n
            assert np.abs(np.sort(group) - centres).max() <= 0.5 / n + 0.005


@pytest.mark.parametrize(
    ("options", "shares"),
    [
        ({}, [7, 21, 37, 64, 80]),  # the default
        ({"videos_per_class": (40, 24, 72)}, [9, 23, 41, 61, 80]),  # with 864 test videos
        ({"event_spacing": 2.0}, [9, 30, 52, 72, 87]),  # more frequent flashes
        ({"event_spacing": 1.5, "videos_per_class": (40, 12, 36)}, [17, 35, 61, 77, 90]),  # easier
    ],
)
def test_sparse_frames_see_the_flashes_of_as_many_videos_as_documented(options, shares):
    """The shares dkp.data.synthetic's docstring and docs/results.md quote."""
    config = replace(SyntheticConfig(), **options)
    plans = plan_dataset(config)
    assert [round(event_hit_share(plans, config, n)) for n in (1, 4, 8, 16, 32)] == shares


def test_an_infinite_event_spacing_gives_one_event_per_brief_segment():
    config = replace(TINY, event_spacing=float("inf"), min_duration=20.0, max_duration=40.0)
    brief = {name for name, group in class_groups(config) if group == BRIEF_GROUP}
    segments = [s for p in plan_dataset(config) for s in p.segments if s.label in brief]
    assert segments and all(len(s.events) == 1 for s in segments)


def test_invalid_configs_are_refused():
    for bad in (
        replace(TINY, fine_classes=syn.MAX_FINE_CLASSES + 1),
        replace(TINY, width=63),
        replace(TINY, fine_classes=0, brief_classes=0),
        replace(TINY, min_duration=7.0),
        replace(TINY, object_size=100),
        replace(TINY, min_duration=0.5),
        replace(TINY, event_spacing=0.3),  # 0.3 s events every 0.3 s would merge
        replace(TINY, coarse_classes=syn.MAX_COARSE_CLASSES + 1),
        replace(TINY, event_spacing=float("nan")),
    ):
        with pytest.raises(ValueError, match="SyntheticConfig"):
            bad.validate()


# ---------------------------------------------------------------------- design, on decoded frames


def test_fine_textures_are_distinct_at_64_and_the_same_flat_grey_at_32_unlike_tints(design):
    plans = plan_dataset(DESIGN)
    cells, small = {}, {}
    for plan in plans:
        (seg,) = plan.segments
        i = (seg.start + seg.end) // 2
        flashes = {e + k for e in seg.events for k in range(DESIGN.event_frames)}
        i = min(set(range(seg.start, seg.end)) - flashes, key=lambda f: abs(f - i))
        x, y = (int(v[i]) for v in object_positions(DESIGN, plan))
        big = decode(video_path(design, plan.video_id), 64)[i, ..., 1]
        inner = big[y + 6 : y + 18, x + 6 : x + 18]  # aligned with the texture's 2x2 cell
        cells[seg.label] = np.array([[inner[a::2, b::2].mean() for b in (0, 1)] for a in (0, 1)])
        # At 32x32, the object's pixels away from its 1-pixel border.
        tiny32 = decode(video_path(design, plan.video_id), 32)[i].astype(np.float64)
        small[seg.label] = tiny32[
            (y + 1) // 2 + 1 : (y + 24) // 2 - 1, (x + 1) // 2 + 1 : (x + 24) // 2 - 1
        ]
    assert len(cells) == 12
    for name, cell in cells.items():
        deviation = cell - cell.mean()
        if name in TEXTURES:
            expected = np.array(TEXTURES[name]) * DESIGN.texture_amplitude * 255 / 219
            assert np.abs(deviation - expected).max() < 6, (name, deviation, expected)
            assert np.abs(deviation).max() > 25
        else:  # brief-event and coarse-colour classes: the flat object
            assert np.abs(deviation).max() < 2, (name, deviation)
        if name not in COARSE:  # same grey for every class (luma 128 -> RGB ~130)
            assert abs(cell.mean() - 130) < 3
    fine = [c - c.mean() for n, c in cells.items() if n in TEXTURES]
    assert min(np.abs(a - b).max() for i, a in enumerate(fine) for b in fine[i + 1 :]) > 40
    unseen = [region[..., 1] for name, region in small.items() if name not in COARSE]
    means = [region.mean() for region in unseen]
    assert max(means) - min(means) < 2.5, means
    assert max(region.std() for region in unseen) < 2.5
    # coarse tints survive the downscale: at 32x32 each object is its own colour, far from grey
    tints = [small[name].reshape(-1, 3).mean(0) for name in COARSE]
    grey = np.mean([region.mean() for region in unseen])
    assert min(np.abs(t - grey).max() for t in tints) > 20, tints
    assert min(np.abs(a - b).max() for i, a in enumerate(tints) for b in tints[i + 1 :]) > 20


def test_brief_events_show_their_colour_only_during_the_event(design):
    plans = plan_dataset(DESIGN)
    seen = 0
    for plan in plans:
        frames = decode(video_path(design, plan.video_id), 64)
        small = decode(video_path(design, plan.video_id), 16)
        assert len(frames) == plan.num_frames
        events = plan.event_frames(DESIGN)
        for name, rgb in COLOURS.items():
            expected = np.zeros(plan.num_frames, bool)
            for first, end, label in events:
                if label == name:
                    expected[first:end] = True
            shown = colour_fraction(frames, rgb)
            assert np.array_equal(shown > 0.05, expected), (plan.video_id, name)
            assert (shown[~expected] < 0.005).all()
            assert (colour_fraction(small, rgb)[expected] > 0.1).all()
            seen += int(expected.sum())
    assert seen == DESIGN.event_frames * sum(len(s.events) for p in plans for s in p.segments)
    assert seen >= 4 * 5


# ------------------------------------------------------------------------- ensure_dataset, CLI


def test_ensure_dataset_reuses_a_matching_dataset_and_never_replaces_another(tmp_path):
    config = replace(TINY, videos_per_class=(1, 0, 0))
    path = ensure_dataset(tmp_path, config, workers=1)
    assert path == tmp_path / ANNOTATION_NAME
    before = mtimes(tmp_path)
    assert len(before) == 4 + 2
    assert ensure_dataset(tmp_path, config, workers=1) == path
    assert mtimes(tmp_path) == before

    # Asked with other parameters (a config's defaults): an error naming what differs, and
    # every file left as it was.
    other = replace(config, seed=7)
    with pytest.raises(FileExistsError) as caught:
        ensure_dataset(tmp_path, other, workers=1)
    assert f"seed: the dataset in {tmp_path} was written with 0, the config asks for 7" in str(
        caught.value
    )
    assert f"dkp-synthetic --out {tmp_path} --force" in str(caught.value)
    assert mtimes(tmp_path) == before
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    manifest["version"] = GENERATOR_VERSION - 1
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(FileExistsError, match=f"written by version {GENERATOR_VERSION - 1}"):
        ensure_dataset(tmp_path, config, workers=1)

    # Only force replaces it: the first dataset's videos are gone.
    assert ensure_dataset(tmp_path, other, workers=1, force=True) == path
    after = mtimes(tmp_path)
    assert len(after) == 4 + 2
    assert not (set(after) - {ANNOTATION_NAME, MANIFEST_NAME}) & set(before)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert SyntheticConfig(**manifest["config"]) == other
    assert manifest["version"] == GENERATOR_VERSION and manifest["complete"] is True

    # A writing that stopped (its manifest says so) or a lost video is finished, in place.
    manifest["complete"] = False
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    victim = next((tmp_path / "videos").iterdir())
    victim.unlink()
    assert not dataset_matches(tmp_path, other)
    ensure_dataset(tmp_path, other, workers=1)
    assert victim.is_file() and dataset_matches(tmp_path, other)


def test_the_data_config_trains_on_a_dataset_as_written_and_finishes_it_so(tmp_path):
    written = replace(TINY, videos_per_class=(1, 0, 0), event_spacing=2.0)
    ensure_dataset(tmp_path, written, workers=1)
    before = mtimes(tmp_path)
    cfg = compose("train", [f"data.root={tmp_path}"])
    prepare = instantiate(cfg.data.prepare)
    assert prepare() == tmp_path / ANNOTATION_NAME  # not the defaults: no error
    assert mtimes(tmp_path) == before
    victim = next((tmp_path / "videos").iterdir())
    victim.unlink()
    prepare()
    assert victim.is_file() and dataset_matches(tmp_path, written)


def test_ensure_dataset_writes_into_an_empty_folder_and_refuses_one_with_other_files(tmp_path):
    config = replace(TINY, videos_per_class=(1, 0, 0))
    (tmp_path / "empty" / "videos").mkdir(parents=True)
    ensure_dataset(tmp_path / "empty", config, workers=1)
    assert dataset_matches(tmp_path / "empty", config)
    mine = tmp_path / "mine"
    (mine / "videos").mkdir(parents=True)
    (mine / "videos" / "v_holiday.mp4").write_bytes(b"a user's video")
    with pytest.raises(FileExistsError, match="holds no manifest.json"):
        ensure_dataset(mine, config, workers=1)
    assert [p.name for p in mine.rglob("*")] == ["videos", "v_holiday.mp4"]


@pytest.mark.slow
def test_default_dataset_has_its_documented_size(tmp_path):
    path = generate(tmp_path, workers=2)
    rs = load_activitynet(path, tmp_path / "videos", subsets=SUBSETS)
    assert len(rs.records) == 2064 and rs.num_classes == 12
    assert sum(r.subset == "testing" for r in rs.records) == 1296
