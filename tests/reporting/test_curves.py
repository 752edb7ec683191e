import json
import math
from pathlib import Path

import pytest

from dkp.reporting.curves import plot_curves
from dkp.reporting.points import CurvePoint, collect_points, series_label
from dkp.runtime.results import Results


def result(
    kind: str = "dkp",
    networks: tuple[str, ...] = ("student", "teacher"),
    series: str | None = None,
    strategy: str = "adaptive",
    ratio: float | None = 4,
    metrics: dict | None = None,
    gflops: float = 0.5,
    gflops_std: float = 0.0,
) -> dict:
    """A results.json as dkp.eval writes it."""
    return {
        "task": "eval",
        "kind": kind,
        "networks": list(networks),
        "series": series,
        "split": "test",
        "sampling": {"strategy": strategy, "n_t": 4, "ratio": ratio, "networks": list(networks)},
        "metrics": {"test/mAP": 0.71, "test/top1": 0.66, "val/mAP": 0.5}
        if metrics is None
        else metrics,
        "cost": {
            "gflops": gflops,
            "gflops_std": gflops_std,
            "frames_student": 16.0,
            "frames_teacher": 4.0,
        },
        "checkpoint": "/x.ckpt",
        "num_videos": 96,
    }


def put(path: Path, content: dict | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def make_sweep(tmp_path: Path) -> Path:
    """A sweep with a DKP curve (one spread), a teacher, a failed job and a truncated file."""
    root = tmp_path / "sweep"
    put(root / "0" / "results.json", result(series="DKP A", gflops=0.2, gflops_std=0.05))
    put(root / "1" / "deep" / "results.json", result(series="DKP A", gflops=0.4))
    put(root / "2" / "results.json", result("frame_classifier", ("teacher",), gflops=1.0))
    put(root / "3" / "failed.json", {"error": "RuntimeError: CUDA OOM\ntrace", "overrides": []})
    put(root / "4" / "results.json", '{"metrics": {"test/mAP": 0.')
    return root


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    return make_sweep(tmp_path)


def test_collect_points_reads_nested_results_as_percent(sweep: Path):
    points, problems = collect_points([sweep])
    by_source = {Path(p.source).relative_to(sweep).as_posix(): p for p in points}
    assert sorted(by_source) == ["0/results.json", "1/deep/results.json", "2/results.json"]
    first = by_source["0/results.json"]
    assert first.series == "DKP A" and first.metric == "mAP"
    assert math.isclose(first.value, 71.0) and first.gflops == 0.2 and first.gflops_std == 0.05
    assert (first.frames_student, first.frames_teacher) == (16.0, 4.0)
    assert by_source["2/results.json"].series == "Teacher"
    reasons = {Path(path).relative_to(sweep).as_posix(): why for path, why in problems}
    assert set(reasons) == {"3/failed.json", "4/results.json"}
    assert reasons["3/failed.json"] == "job failed: RuntimeError: CUDA OOM"
    assert reasons["4/results.json"].startswith("unreadable")


def test_collect_points_metric_choice_and_bad_values(tmp_path: Path):
    put(tmp_path / "a" / "results.json", result(metrics={"test/top1": 0.5, "test/top5": 0.8}))
    put(tmp_path / "b" / "results.json", result(metrics={"test/mAP": 0.9, "test/top1": 0.25}))
    points, problems = collect_points([tmp_path])
    assert [(p.metric, p.value) for p in points] == [("top1", 50.0), ("top1", 25.0)]
    assert problems == []
    points, problems = collect_points([tmp_path], metric="mAP")
    assert [p.value for p in points] == [90.0]
    assert problems == [(str(tmp_path / "a" / "results.json"), "metrics.test/mAP is missing")]
    put(tmp_path / "c" / "results.json", result(metrics={"test/top1": None}))
    put(tmp_path / "d" / "results.json", result(metrics={"test/top1": 71.0}))
    put(tmp_path / "e" / "results.json", {**result(), "cost": None})
    _, problems = collect_points([tmp_path], split="test")
    reasons = {Path(path).parent.name: why for path, why in problems}
    assert reasons == {
        "c": "metrics.test/top1 is null",
        "d": "metrics.test/top1 = 71.0 is not a fraction in [0, 1]",
        "e": "no 'cost' object",
    }
    put(tmp_path / "f" / "results.json", result(metrics={"test/mAP": 0.1, "val/mAP": 0.3}))
    points, _ = collect_points([tmp_path / "f", tmp_path / "b"], split="val")
    assert [(p.metric, p.value) for p in points] == [("mAP", 30.0)]  # b has no val/ metric


def test_series_labels_when_series_is_null():
    def label(*args, **kwargs) -> str:
        return series_label(Results.from_dict(result(*args, **kwargs)))

    assert label(series="  DKP Adaptive-4 ") == "DKP Adaptive-4"
    assert label() == "DKP adaptive-4"
    assert label(strategy="fixed", ratio=8.0) == "DKP fixed-8"
    assert label(ratio=None) == "DKP adaptive"
    assert label("frame_classifier", ("student",)) == "Student"
    assert label("frame_classifier", ("teacher",), strategy="fixed") == "Teacher (fixed)"


def point(series: str, gflops: float, value: float, source: str, std: float = 0.0) -> CurvePoint:
    return CurvePoint(series, gflops, std, value, "mAP", 16.0, 4.0, source)


def test_plot_curves_writes_png_and_svg(tmp_path: Path):
    points = [
        point("DKP adaptive-4", 0.2, 60.0, "a", std=0.02),
        point("DKP adaptive-4", 0.4, 65.0, "b"),
        point("DKP adaptive-4", 0.4, 67.0, "c"),  # a repeated run: the line goes through 66
        point("Teacher", 2.0, 70.0, "d"),  # a single point: drawn as a marker
        point("My baseline", 1.0, 50.0, "e"),
    ]
    paths = plot_curves(points, tmp_path / "fig" / "curves", title="Sweep")
    assert paths == [tmp_path / "fig" / "curves.png", tmp_path / "fig" / "curves.svg"]
    png, svg = paths
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 1000
    text = svg.read_text()
    for label in (
        "DKP adaptive-4",
        "Teacher",
        "My baseline",
        "GFLOPs per video (GMACs",
        "mAP (%)",
        "Sweep",
    ):
        assert label in text
    top1 = [CurvePoint("Student", 1.0, 0.0, 40.0, "top1", 8.0, 0.0, "s")]
    assert "Top-1 accuracy (%)" in plot_curves(top1, tmp_path / "top1")[1].read_text()
