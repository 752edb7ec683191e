"""Early exit end to end through the real configs: train, score a budget, draw a curve."""

import json

import pytest

from dkp.curves import collect_points
from dkp.exit_curves import exit_curve, summary_tables
from dkp.exits import evaluate_exits
from dkp.jobs import run_job
from dkp.modules import EarlyExitModule, load_module
from dkp.train import train
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
    """conf/exits.yaml composed as ``python -m dkp.exits`` would (it has no trainer group)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from dkp.train import CONFIG_DIR

    fast = ["data.num_workers=0", "data.persistent_workers=false", f"data.root={dataset}"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose("exits", overrides=[*fast, "data.prepare=null", *overrides],
                      return_hydra_config=True)  # fmt: skip
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir)
        cfg.paths.cache_dir = str(output_dir / ".cache")
    return cfg


def test_early_exit_trains_and_reloads(trained):
    assert trained["kind"] == "early_exit" and trained["networks"] == ["teacher"]
    assert trained["cost"]["frames_teacher"] == 8.0
    assert "train/distill" in trained["metrics"]
    module = load_module(trained["last_checkpoint"])
    assert isinstance(module, EarlyExitModule) and module.net.num_checkpoints == 4
    assert module.hparams["sampling"]["n_t"] == 8


def test_exits_job_meets_its_budget_and_writes_what_curves_read(trained, tiny_dataset, tmp_path):
    cfg = exits_config(
        [f"ckpt_path={trained['last_checkpoint']}", "budget_fraction=0.5"], tmp_path, tiny_dataset
    )
    results = run_job(cfg, evaluate_exits)
    exits = results["exits"]
    assert sum(exits["counts"]) == exits["total"] == results["num_videos"] == 8
    assert exits["selected_gflops"] <= exits["budget"] + 1e-12
    assert exits["budget"] == pytest.approx(0.5 * exits["checkpoint_gflops"][-1])
    assert results["timing"]["seconds"] > 0 and results["series"] == "Early exit (ResNet)"
    assert (tmp_path / "exit_counts.md").is_file() and (tmp_path / "predictions.csv").is_file()
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["exits"]["counts"] == exits["counts"]
    points, problems = collect_points([tmp_path])
    assert not problems and len(points) == 1
    assert points[0].gflops == pytest.approx(results["cost"]["gflops"])


def test_exit_curve_writes_one_point_per_budget(trained, tiny_dataset, tmp_path):
    points = exit_curve(
        trained["last_checkpoint"], tmp_path, tiny_dataset, fractions=[0.3, 0.6, 1.0],
        repeats=1, overrides=["data.num_workers=0", "data.persistent_workers=false"],
    )  # fmt: skip
    assert [p["budget_fraction"] for p in points] == [0.3, 0.6, 1.0]
    assert points[-1]["exits"]["counts"][:3] == [0, 0, 0]  # the full budget: no early stop
    gflops = [p["cost"]["gflops"] for p in points]
    assert gflops == sorted(gflops)
    for p, budget in zip(points, [0.3, 0.6, 1.0], strict=True):
        assert p["exits"]["selected_gflops"] <= budget * p["exits"]["checkpoint_gflops"][-1]
    found, problems = collect_points([tmp_path])
    assert not problems and {p.series for p in found} == {"Early exit (ResNet)"}
    assert len(found) == 3
    assert (tmp_path / "exit_counts.csv").read_text().count("\n") == 4
    assert (tmp_path / "exit_examples.png").is_file()
    # run again: nothing recomputed, the same points
    again = exit_curve(
        trained["last_checkpoint"], tmp_path, tiny_dataset, fractions=[0.3, 0.6, 1.0],
        repeats=1, overrides=["data.num_workers=0", "data.persistent_workers=false"],
    )  # fmt: skip
    assert [p["cost"] for p in again] == [p["cost"] for p in points]
    csv_path, _ = summary_tables({"Early exit (ResNet)": points}, tmp_path / "summary", 0.5)
    assert csv_path.read_text().splitlines()[1].startswith("Early exit (ResNet) (60% budget),")
