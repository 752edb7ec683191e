"""run_job inside a SLURM job, no cluster needed: the job id in every Results, a failed.json that
stays when SLURM ends the job unseen, and where a requeued training job resumes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from omegaconf import DictConfig

from dkp.runtime.jobs import run_job
from dkp.runtime.results import CostSummary, Results, read_failure, read_results
from tests.conftest import compose_config


class Killed(SystemExit):
    """Stands for SLURM ending the job: nothing of ours catches it (scancel, pre-emption)."""


def in_slurm_job(monkeypatch: pytest.MonkeyPatch, job_id: str, restarts: int = 0) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", job_id)
    monkeypatch.setenv("SLURM_RESTART_COUNT", str(restarts))


def sweep_job(name: str, out: Path, *overrides: str) -> DictConfig:
    """A config as one job of a multirun composes it."""
    extra = ["ckpt_path=model.ckpt"] if name == "eval" else []
    return compose_config(name, ["hydra.mode=MULTIRUN", *extra, *overrides], out)


def scored(_cfg: DictConfig) -> Results:
    return Results(metrics={"val/mAP": 0.5}, cost=CostSummary(1.0))


def killed(_cfg: DictConfig) -> Results:
    raise Killed(1)


def test_results_name_the_slurm_job_that_ran_them(monkeypatch, tmp_path):
    in_slurm_job(monkeypatch, "4242")
    run_job(sweep_job("eval", tmp_path / "a"), scored)
    assert read_results(tmp_path / "a" / "results.json").slurm_job_id == "4242"
    monkeypatch.delenv("SLURM_JOB_ID")
    run_job(sweep_job("eval", tmp_path / "b"), scored)
    assert read_results(tmp_path / "b" / "results.json").slurm_job_id is None


def test_a_slurm_sweep_job_ended_unseen_leaves_failed_json_until_it_finishes(monkeypatch, tmp_path):
    in_slurm_job(monkeypatch, "17")

    with pytest.raises(Killed):
        run_job(sweep_job("eval", tmp_path, "sampling.n_t=3"), killed)
    failure = read_failure(tmp_path / "failed.json")
    assert failure.error.startswith("SLURM job 17 did not finish")
    assert "sampling.n_t=3" in failure.overrides
    assert not (tmp_path / "results.json").exists()

    in_slurm_job(monkeypatch, "18")
    run_job(sweep_job("eval", tmp_path, "sampling.n_t=3"), resume_point)
    assert (tmp_path / "resumed_from").is_file()  # started is not finished: it ran again
    assert not (tmp_path / "failed.json").exists()
    assert json.loads((tmp_path / "job.json").read_text())["results"] == [""]


def resume_point(cfg: DictConfig) -> Results:
    """A training task that records what it was asked to resume from."""
    Path(cfg.paths.output_dir, "resumed_from").write_text(str(cfg.ckpt_path))
    return scored(cfg)


def killed_after_checkpoint(cfg: DictConfig) -> Results:
    """A training task pre-empted after writing its ``last.ckpt``."""
    last = Path(cfg.callbacks.last_checkpoint.dirpath) / "last.ckpt"
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_bytes(b"weights")
    raise Killed(1)


def test_a_requeued_training_job_resumes_from_its_earlier_attempts_last_ckpt(monkeypatch, tmp_path):
    in_slurm_job(monkeypatch, "30", restarts=0)
    with pytest.raises(Killed):
        run_job(sweep_job("train", tmp_path), killed_after_checkpoint)
    in_slurm_job(monkeypatch, "30", restarts=1)
    run_job(sweep_job("train", tmp_path), resume_point)
    assert (tmp_path / "resumed_from").read_text() == str(tmp_path / "checkpoints" / "last.ckpt")


def test_a_requeued_job_never_resumes_from_a_checkpoint_its_attempts_did_not_write(
    monkeypatch, tmp_path
):
    """A last.ckpt older than the job (another config's, in a reused sweep directory), one
    of a job with another config, or one when SLURM did not requeue: training starts anew."""
    stale = tmp_path / "checkpoints" / "last.ckpt"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"another config's weights")
    os.utime(stale, (1e9, 1e9))
    in_slurm_job(monkeypatch, "40", restarts=0)
    with pytest.raises(Killed):
        run_job(sweep_job("train", tmp_path), killed)
    in_slurm_job(monkeypatch, "40", restarts=1)
    run_job(sweep_job("train", tmp_path), resume_point)
    assert (tmp_path / "resumed_from").read_text() == "None"

    other = tmp_path / "other"
    in_slurm_job(monkeypatch, "41", restarts=0)
    with pytest.raises(Killed):
        run_job(sweep_job("train", other, "seed=1"), killed_after_checkpoint)
    in_slurm_job(monkeypatch, "42", restarts=1)
    run_job(sweep_job("train", other, "seed=2"), resume_point)
    assert (other / "resumed_from").read_text() == "None"

    in_slurm_job(monkeypatch, "43", restarts=0)
    run_job(sweep_job("train", other, "seed=1"), resume_point)
    assert (other / "resumed_from").read_text() == "None"


def test_a_sweep_of_slurm_jobs_exits_1_naming_the_jobs_that_failed(tmp_path, capsys):
    """The jobs' failures reach the command as files: this sweep's are named, older ones not."""
    from omegaconf import OmegaConf

    from dkp.runtime.jobs import SweepFailures

    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    for job in ("0", "1", "2"):
        (tmp_path / job).mkdir()
    (tmp_path / "2" / "failed.json").write_text("{}")
    os.utime(tmp_path / "2" / "failed.json", (1e9, 1e9))  # an earlier sweep's
    callback = SweepFailures()
    callback.on_multirun_start(config)
    callback.on_multirun_end(config)  # nothing failed in this sweep
    (tmp_path / "1" / "failed.json").write_text("{}")
    with pytest.raises(SystemExit) as ended:
        callback.on_multirun_end(config)
    assert ended.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        "1 job(s) failed (failed.json in each):",
        f"  {tmp_path / '1'}",
    ]
