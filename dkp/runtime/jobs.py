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
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

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


def finished(out_dir: Path, key: str) -> dict[str, Results] | None:
    """The results of the job done in ``out_dir`` with config digest ``key``, or None."""
    try:
        record = json.loads((out_dir / JOB_FILE).read_text(encoding="utf-8"))
        if record.get("config_hash") != key:
            return None
        return {sub: read_results(out_dir / sub / RESULTS_FILE) for sub in record["results"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def run_job(cfg: DictConfig, task: Task) -> Results | dict[str, Results] | None:
    """Run ``task(cfg)`` unless already done; write its results (or failed.json).

    Returns what the task returned (or the stored results of a finished job, in the same
    shape), or None when the job failed in a multirun."""
    out_dir = Path(cfg.paths.output_dir)
    mark_latest(cfg)
    key = config_hash(cfg)
    done = finished(out_dir, key)
    if done is not None:
        log.info("already done, skipping: %s", out_dir / JOB_FILE)
        return done[""] if list(done) == [""] else done
    failed = out_dir / FAILED_FILE
    try:
        with ranks_join_this_job():
            outcome = task(cfg)
    except Exception as err:
        if not _in_multirun() or not _is_rank_zero():
            raise
        log.error("job failed (%s: %s); the sweep goes on", type(err).__name__, err)
        error = f"{type(err).__name__}: {err}"
        write_failure(failed, Failure(error, _overrides(), traceback.format_exc()))
        return None
    results = {"": outcome} if isinstance(outcome, Results) else dict(outcome)
    for item in results.values():
        item.overrides = _overrides()
    if not _is_rank_zero():
        return outcome
    for sub, item in results.items():
        path = write_results(out_dir / sub / RESULTS_FILE, item)
        log.info("results: %s", path)
    write_json(out_dir / JOB_FILE, {"config_hash": key, "results": list(results)})
    failed.unlink(missing_ok=True)
    return outcome
