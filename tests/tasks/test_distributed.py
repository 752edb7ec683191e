"""Many processes: DDP gives the metrics one process gives (every evaluation video scored once),
Hydra sweeps with DDP keep one directory per job, and the cluster presets compose."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dkp.data.sampling import batch_order
from dkp.data.sampling.batch_order import ResumableSampler, ShardSampler, item_seed
from dkp.runtime.jobs import run_job
from dkp.runtime.results import read_results
from dkp.tasks.evaluate import evaluate
from tests.conftest import compose_config

REPO = Path(__file__).resolve().parents[2]
FAST = [
    "data.prepare=null",
    "data.num_classes=8",
    "data.num_workers=0",
    "data.persistent_workers=false",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def as_rank(monkeypatch, rank: int, size: int) -> None:
    monkeypatch.setattr(batch_order, "world", lambda: (rank, size))


def test_evaluation_shards_cover_every_video_once(monkeypatch):
    dataset = list(range(7))
    shards = []
    for rank in (0, 1):
        as_rank(monkeypatch, rank, 2)
        sampler = ShardSampler(dataset)
        shards.append(list(sampler))
        assert len(sampler) == len(shards[-1])
    assert shards == [[0, 2, 4, 6], [1, 3, 5]]


def test_training_order_depends_on_seed_and_epoch_only_and_can_start_part_way(monkeypatch):
    as_rank(monkeypatch, 0, 1)
    dataset = list(range(10))
    a, b = ResumableSampler(dataset, seed=3), ResumableSampler(dataset, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    order = list(a)
    assert sorted(i for i, _ in order) == dataset and order == list(b)
    assert all(seed == item_seed(3, 2, i) for i, seed in order)
    b.start = 4
    assert list(b) == order[4:] and list(b) == order  # `start` holds for one pass
    b.set_epoch(3)
    assert list(b) != order


def test_cluster_presets_compose(tmp_path):
    cfg = compose_config(
        "train", ["trainer=ddp_multinode", "hydra/launcher=slurm", "data.num_workers=6"], tmp_path
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (2, 4, 4)
    assert launcher.cpus_per_task == 6
    assert launcher.additional_parameters == {"requeue": True}  # pre-emption requeues, resumes
    assert cfg.hydra.callbacks.sweep_failures._target_ == "dkp.runtime.jobs.SweepFailures"
    assert (cfg.trainer.strategy, cfg.trainer.num_nodes, cfg.trainer.devices) == ("ddp", 2, 4)


def cli(module: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, "-m", module, *args, *FAST],  # `-m` (multirun) must come first
        capture_output=True,
        text=True,
        timeout=500,
        cwd=cwd,
        env=env,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def single_process(ckpt: str, data: Path, out: Path, split: str, n_t: int) -> dict:
    overrides = [f"ckpt_path={ckpt}", f"split={split}", f"sampling.n_t={n_t}"]
    return run_job(compose_config("eval", overrides, out, data), evaluate).metrics


@pytest.mark.slow
def test_ddp_training_reports_the_metrics_of_one_process(odd_dataset, tmp_path):
    """Two CPU processes (gloo): the synced set-level metrics equal one process's, which
    they would not if Lightning's padding sampler scored a video twice."""
    cli(
        "dkp.cli.train",
        tmp_path,
        "experiment=teacher",
        f"data.root={odd_dataset}",
        "trainer.strategy=ddp_spawn",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "data.batch_size=4",
        "sampling.n_t=1",
        f"hydra.run.dir={tmp_path}/run",
    )
    results = read_results(tmp_path / "run" / "results.json")
    ckpt = results.last_checkpoint
    for split in ("val", "test"):
        alone = single_process(ckpt, odd_dataset, tmp_path / split, split, 1)
        for metric in ("mAP", "top1", "top5"):
            key = f"{split}/{metric}"
            assert results.metrics[key] == pytest.approx(alone[key], abs=1e-6), key


@pytest.mark.slow
def test_multirun_with_ddp_keeps_one_directory_per_job(odd_dataset, tmp_path):
    """strategy=ddp re-runs the command for rank 1: it must join each job, not start a sweep
    or a run directory of its own, and the second job must start its own ranks."""
    teacher = tmp_path / "teacher"
    cli(
        "dkp.cli.train",
        tmp_path,
        "experiment=teacher",
        f"data.root={odd_dataset}",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "data.batch_size=4",
        "sampling.n_t=1",
        "test=false",
        f"hydra.run.dir={teacher}",
    )
    ckpt = teacher / "checkpoints" / "last.ckpt"
    work = tmp_path / "work"
    work.mkdir()
    cli(
        "dkp.cli.evaluate",
        work,
        "-m",
        f"ckpt_path={ckpt}",
        f"data.root={odd_dataset}",
        "trainer.strategy=ddp",
        "trainer.devices=2",
        "split=val",
        "sampling.n_t=1,2",
        f"hydra.sweep.dir={work}/sweep",
        f"paths.cache_dir={tmp_path}/cache",
    )
    assert sorted(p.name for p in work.iterdir()) == ["sweep"]  # no outputs/ of rank 1
    assert list((tmp_path / "cache" / "video_index").glob("*.idx"))  # ranks share the cache
    assert sorted(p.name for p in (work / "sweep").iterdir()) == ["0", "1", "multirun.yaml"]
    for job, n_t in ((0, 1), (1, 2)):
        job_dir = work / "sweep" / str(job)
        assert (job_dir / "train_ddp_process_1.log").is_file()  # rank 1 ran here
        assert not (job_dir / "failed.json").exists()
        results = read_results(job_dir / "results.json")
        assert results.sampling["n_t"] == n_t
        alone = single_process(str(ckpt), odd_dataset, tmp_path / f"alone{job}", "val", n_t)
        assert results.metrics["val/mAP"] == pytest.approx(alone["val/mAP"], abs=1e-6)
