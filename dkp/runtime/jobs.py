"""Running one job (a run, or one point of a sweep): the one place that skips finished work and
records failures, so sweeps are resumable and one bad job never stops them.

A job's task returns one :class:`Results` (written as ``results.json`` in the run directory)
or several, keyed by subdirectory (``{"00": ..., "01": ...}``: an exit curve's points). When
they are all written, ``job.json`` records the config digest and the files. Running a job
whose ``job.json`` has the same digest (same resolved config, same size and mtime of every
file it names) and whose files are all there returns the stored results without running it:
an interrupted sweep, run again with the same sweep dir, finishes only the missing jobs.
In a multirun, a job that fails writes ``failed.json`` (error and overrides) and lets the
sweep go on; in a single run the error propagates. In a distributed run every rank runs the
job and only global rank 0 writes these files (see :mod:`dkp.runtime.ddp_launch` for ``ddp``).

Under SLURM (``SLURM_JOB_ID`` set) each Results records the job id. A SLURM job can end
without running any of our code (``scancel``, a crash, the node lost), so a sweep job there
writes ``failed.json`` before it starts, and ``job.json`` with its config digest: the
failure stays if it never finishes, and a job SLURM requeues (pre-emption, ``scontrol
requeue``) resumes training from the ``last.ckpt`` its earlier attempt left. Their failures
reach the command that launched them only as files: :class:`SweepFailures` names them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from typing_extensions import override

from dkp.runtime.atomic import write_json
from dkp.runtime.ddp_launch import ranks_join_this_job
from dkp.runtime.results import (
    FAILED_FILE,
    RESULTS_FILE,
    Failure,
    Results,
    read_results,
    write_failure,
    write_results,
)

log = logging.getLogger(__name__)
JOB_FILE = "job.json"
#: What a job logs when it finds its results stored, writes them, or fails in a multirun: a
#: pipeline reads a command's log for them (dkp.runtime.steps.found_done).
SKIPPED, WROTE, FAILED = "already done, skipping", "results", "job failed"
IGNORED_KEYS = ("paths", "hydra", "tags")
Task = Callable[[DictConfig], "Results | Mapping[str, Results]"]


def _files_in(value: Any) -> list[str]:
    """Every string in a nested config that names an existing file (checkpoints, annotations)."""
    if isinstance(value, dict):
        return [f for v in value.values() for f in _files_in(v)]
    if isinstance(value, list):
        return [f for v in value for f in _files_in(v)]
    return [value] if isinstance(value, str) and os.path.isfile(value) else []


def config_hash(cfg: DictConfig) -> str:
    """A digest of what determines a job's result: the resolved config (paths excluded) and
    the size and mtime of every file it names (a retrained checkpoint or a regenerated
    dataset makes the job run again)."""
    data = {
        key: OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        for key, value in cfg.items()
        if key not in IGNORED_KEYS
    }
    files = {}
    for path in sorted(set(_files_in(data))):
        stat = os.stat(path)
        files[path] = [stat.st_size, stat.st_mtime_ns]
    blob = json.dumps({"config": data, "files": files}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def _is_rank_zero() -> bool:
    """Global rank 0 (Lightning sets the rank once the trainer knows it; SLURM/env before)."""
    from lightning_fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def _overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def mark_latest(cfg: DictConfig) -> Path | None:
    """Point ``outputs/<task>/latest`` at this run's directory (``outputs/<task>/<date>/
    <time>``), so the newest run of each task is one fixed path; only for single runs in the
    default layout. Returns the link."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.RUN:
        return None
    out_dir = Path(cfg.paths.output_dir)
    task_dir = Path(cfg.paths.log_dir) / "outputs" / str(cfg.get("task_name"))
    if len(out_dir.parents) < 2 or out_dir.parents[1] != task_dir or not _is_rank_zero():
        return None
    link, tmp = task_dir / "latest", task_dir / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(out_dir.relative_to(task_dir))
    os.replace(tmp, link)
    return link


def _job_record(out_dir: Path) -> dict[str, Any]:
    """``out_dir``'s job.json ({} if absent or unreadable)."""
    try:
        record = json.loads((out_dir / JOB_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def finished(out_dir: Path, key: str) -> dict[str, Results] | None:
    """The results of the job done in ``out_dir`` with config digest ``key``, or None."""
    record = _job_record(out_dir)
    if record.get("config_hash") != key or record.get("results") is None:
        return None  # another config's, or this one's started but not finished
    try:
        return {sub: read_results(out_dir / sub / RESULTS_FILE) for sub in record["results"]}
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def slurm_job_id() -> str | None:
    """The SLURM job this process runs in (``SLURM_JOB_ID``), or None outside SLURM."""
    return os.environ.get("SLURM_JOB_ID") or None


def _requeued() -> bool:
    """True in a SLURM job that SLURM started again (pre-emption, ``scontrol requeue``)."""
    count = os.environ.get("SLURM_RESTART_COUNT", "0")
    return count.isdigit() and int(count) > 0


def _mark_started(out_dir: Path, key: str, job_id: str) -> None:
    """Before a SLURM sweep job runs: ``failed.json`` that stays unless it finishes, and
    ``job.json`` naming its config (kept from the first attempt, so its time dates it)."""
    error = (
        f"SLURM job {job_id} did not finish: still running, or ended by SLURM (scancel, time or "
        "memory limit, pre-emption, a lost node) or by a crash; its log is in the sweep's "
        ".submitit/"
    )
    write_failure(out_dir / FAILED_FILE, Failure(error, _overrides()))
    if _job_record(out_dir).get("config_hash") != key:
        write_json(out_dir / JOB_FILE, {"config_hash": key, "results": None, "slurm": job_id})


def requeue_resume_path(cfg: DictConfig, key: str) -> str | None:
    """The ``last.ckpt`` a requeued SLURM training job resumes from: the one its earlier
    attempt wrote in this run directory (same config digest, written after that attempt
    began), unless a ``ckpt_path`` is given or Lightning resumes from its own ``hpc_ckpt``."""
    dirpath = OmegaConf.select(cfg, "callbacks.last_checkpoint.dirpath", default=None)
    if not _requeued() or dirpath is None or "ckpt_path" not in cfg or cfg.ckpt_path:
        return None
    out_dir = Path(cfg.paths.output_dir)
    last, job = Path(dirpath) / "last.ckpt", out_dir / JOB_FILE
    if list(out_dir.glob("hpc_ckpt_*.ckpt")) or not last.is_file():
        return None
    if _job_record(out_dir).get("config_hash") != key:
        return None
    return str(last) if last.stat().st_mtime_ns >= job.stat().st_mtime_ns else None


def run_job(cfg: DictConfig, task: Task) -> Results | dict[str, Results] | None:
    """Run ``task(cfg)`` unless already done; write its results (or failed.json).

    Returns what the task returned (or the stored results of a finished job, in the same
    shape), or None when the job failed in a multirun."""
    out_dir = Path(cfg.paths.output_dir)
    mark_latest(cfg)
    key = config_hash(cfg)
    done = finished(out_dir, key)
    if done is not None:
        log.info("%s: %s", SKIPPED, out_dir / JOB_FILE)
        return done[""] if list(done) == [""] else done
    failed = out_dir / FAILED_FILE
    job_id = slurm_job_id()
    if job_id and _in_multirun() and _is_rank_zero():
        _mark_started(out_dir, key, job_id)
    resume = requeue_resume_path(cfg, key) if job_id else None
    if resume:
        log.info("requeued SLURM job %s resumes from %s", job_id, resume)
        with read_write(cfg), open_dict(cfg):
            cfg.ckpt_path = resume
    try:
        with ranks_join_this_job():
            outcome = task(cfg)
    except Exception as err:
        if not _in_multirun() or not _is_rank_zero():
            raise
        log.error("%s (%s: %s); the sweep goes on", FAILED, type(err).__name__, err)
        error = f"{type(err).__name__}: {err}"
        write_failure(failed, Failure(error, _overrides(), traceback.format_exc()))
        return None
    results = {"": outcome} if isinstance(outcome, Results) else dict(outcome)
    for item in results.values():
        item.overrides = _overrides()
        item.slurm_job_id = job_id
    if not _is_rank_zero():
        return outcome
    for sub, item in results.items():
        path = write_results(out_dir / sub / RESULTS_FILE, item)
        log.info("%s: %s", WROTE, path)
    write_json(out_dir / JOB_FILE, {"config_hash": key, "results": list(results)})
    failed.unlink(missing_ok=True)
    return outcome


class SweepFailures(Callback):
    """At the end of a sweep whose jobs ran in other processes (``hydra/launcher=slurm``),
    names the jobs that left ``failed.json`` in this sweep and exits 1, as a local sweep does:
    their failures reach this process as files, not as return values."""

    def __init__(self) -> None:
        self.began = time.time()

    @override
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.began = time.time()

    @override
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        files = Path(config.hydra.sweep.dir).glob(f"*/{FAILED_FILE}")
        failed = sorted(str(f.parent) for f in files if f.stat().st_mtime >= self.began)
        if failed:
            print(f"{len(failed)} job(s) failed (failed.json in each):", file=sys.stderr)
            print("".join(f"  {path}\n" for path in failed), end="", file=sys.stderr)
            raise SystemExit(1)
