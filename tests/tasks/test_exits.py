"""Early exit end to end through the real configs: train, score a budget, draw a curve."""

import csv
import json
import re

import numpy as np
import pytest

from dkp.lightning import EarlyExitModule, load_module
from dkp.reporting.points import collect_points
from dkp.reporting.tables import exit_counts_near
from dkp.runtime.jobs import run_job
from dkp.tasks.exits import exits
from dkp.tasks.train import train
from tests.conftest import compose_config

pytestmark = pytest.mark.slow  # trains a model (about a minute on 2 cores)
STEPS = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "data.batch_size=4",
    "data.eval_batch_size=8",
]


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("early_exit")
    cfg = compose_config(
        "train", ["experiment=early_exit", "model.distill_weight=1.0", *STEPS], run_dir,
        tiny_dataset,
    )  # fmt: skip
    return run_job(cfg, train)


def exits_config(overrides, output_dir, dataset):
    """conf/exits.yaml composed as ``dkp-exits`` would (it has no trainer group)."""
    return compose_config("exits", ["timing_repeats=1", *overrides], output_dir, dataset)


def test_early_exit_trains_and_reloads(trained):
    assert trained.kind == "early_exit" and trained.networks == ["teacher"]
    assert trained.cost.frames_teacher == 8.0
    assert "train/distill" in trained.metrics
    module = load_module(trained.last_checkpoint)
    assert isinstance(module, EarlyExitModule) and module.net.num_checkpoints == 4
    assert module.hparams["sampling"]["n_t"] == 8


def test_exits_job_meets_its_budget_and_writes_what_curves_read(trained, tiny_dataset, tmp_path):
    cfg = exits_config(
        [f"ckpt_path={trained.last_checkpoint}", "budget_fraction=0.5"], tmp_path, tiny_dataset
    )
    results = run_job(cfg, exits)
    summary = results.exits
    assert sum(summary.counts) == summary.total == results.num_videos == 8
    assert summary.selected_gflops <= summary.budget + 1e-12
    assert summary.budget == pytest.approx(0.5 * summary.checkpoint_gflops[-1])
    assert results.timing.seconds > 0 and results.series == "Early exit (ResNet)"
    for name in ("exit_counts.md", "predictions.csv", "exit_examples.png"):
        assert (tmp_path / name).is_file(), name
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["exits"]["counts"] == summary.counts and on_disk["version"] == 2
    points, problems = collect_points([tmp_path])
    assert not problems and len(points) == 1
    assert points[0].gflops == pytest.approx(results.cost.gflops)


def test_exit_curve_writes_one_point_per_budget(trained, tiny_dataset, tmp_path):
    overrides = [f"ckpt_path={trained.last_checkpoint}", "budget_fraction=[0.3,0.6,1.0]"]
    points = run_job(exits_config(overrides, tmp_path, tiny_dataset), exits)
    assert sorted(points) == ["00", "01", "02"]
    points = [points[k] for k in sorted(points)]
    assert [p.exits.budget_fraction for p in points] == [0.3, 0.6, 1.0]
    assert points[-1].exits.counts[:3] == [0, 0, 0]  # the full budget: no early stop
    gflops = [p.cost.gflops for p in points]
    assert gflops == sorted(gflops)
    for p, budget in zip(points, [0.3, 0.6, 1.0], strict=True):
        assert p.exits.selected_gflops <= budget * p.exits.checkpoint_gflops[-1]
    found, problems = collect_points([tmp_path])
    assert not problems and {p.series for p in found} == {"Early exit (ResNet)"}
    assert len(found) == 3
    assert (tmp_path / "exit_counts.csv").read_text().count("\n") == 4
    table = list(csv.reader((tmp_path / "checkpoints.csv").open()))
    k = len(points[0].exits.checkpoint_gflops)
    assert [row[0] for row in table] == [
        "Checkpoint", *map(str, range(1, k + 1)), "oracle (knows the labels)"
    ]  # fmt: skip
    gflops = [float(row[2]) for row in table[1:-1]]
    assert gflops == pytest.approx(points[0].exits.checkpoint_gflops, abs=1e-4)
    assert table[k][3] == "100%" and float(table[-1][2]) <= gflops[-1]
    # top-1 with its 95 % interval over the videos; the oracle's is the highest
    top1 = [re.fullmatch(r"(\d+\.\d) \[(\d+\.\d), (\d+\.\d)\]", row[4]) for row in table[1:]]
    value, lo, hi = (np.array([float(m[i]) for m in top1]) for i in (1, 2, 3))
    assert (lo <= value).all() and (value <= hi).all()
    assert value[-1] >= value[:-1].max()
    assert (tmp_path / "exit_examples.png").is_file()
    # run again: nothing recomputed, the same points
    again = run_job(exits_config(overrides, tmp_path, tiny_dataset), exits)
    assert [again[k].cost for k in sorted(again)] == [p.cost for p in points]
    csv_path, _ = exit_counts_near({"Early exit (ResNet)": points}, tmp_path / "summary", 0.5)
    assert csv_path.read_text().splitlines()[1].startswith("Early exit (ResNet) (60% budget),")


def test_a_frame_selector_needs_dynamic_dkp(trained, tiny_dataset, tmp_path):
    cfg = exits_config([f"ckpt_path={trained.last_checkpoint}", "frame_selector.enabled=true"],
                       tmp_path, tiny_dataset)  # fmt: skip
    with pytest.raises(ValueError, match="frame_selector.enabled: a 'early_exit' model"):
        exits(cfg)


def test_a_model_that_cannot_stop_early_is_refused(tiny_dataset, tmp_path):
    cfg = compose_config("train", ["experiment=teacher", "test=false", *STEPS], tmp_path / "t",
                         tiny_dataset)  # fmt: skip
    teacher = run_job(cfg, train)
    cfg = exits_config([f"ckpt_path={teacher.last_checkpoint}"], tmp_path / "x", tiny_dataset)
    with pytest.raises(ValueError, match="'frame_classifier' model has no exits"):
        exits(cfg)
