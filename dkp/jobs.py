"""Running one train/eval job so sweeps are resumable and robust.

A job whose run directory already holds a results.json made from the same config is not run
again (so an interrupted sweep, run again with the same sweep dir, finishes only the missing
jobs). In a multirun, a job that fails writes ``failed.json`` (error and overrides) and lets
the sweep go on; in a single run the error propagates. In a distributed run every rank runs
the job and only global rank 0 writes these files (see :mod:`dkp.hydra_ddp` for ``ddp``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning_fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from dkp.evaluation.results import RESULTS_FILE, read_results, write_results
from dkp.hydra_ddp import ranks_join_this_job

log = logging.getLogger(__name__)
FAILED_FILE = "failed.json"
IGNORED_KEYS = ("paths", "hydra", "tags")


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
    return getattr(rank_zero_only, "rank", 0) == 0


def _overrides() -> list[str]:
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def run_job(cfg: DictConfig, task: Callable[[DictConfig], dict[str, Any]]) -> dict[str, Any] | None:
    """Run ``task(cfg)`` unless already done; write its results.json (or failed.json)."""
    out_dir = Path(cfg.paths.output_dir)
    done, failed = out_dir / RESULTS_FILE, out_dir / FAILED_FILE
    key = config_hash(cfg)
    if done.is_file():
        try:
            previous = read_results(done)
        except (OSError, json.JSONDecodeError):
            previous = {}
        if previous.get("config_hash") == key:
            log.info("already done, skipping: %s", done)
            return previous
    try:
        with ranks_join_this_job():
            results = task(cfg)
    except Exception as err:
        if not _in_multirun() or not _is_rank_zero():
            raise
        log.error("job failed (%s: %s); the sweep goes on", type(err).__name__, err)
        write_results(
            failed,
            {
                "error": f"{type(err).__name__}: {err}",
                "overrides": _overrides(),
                "traceback": traceback.format_exc(),
            },
        )
        return None
    results = {**results, "config_hash": key, "overrides": _overrides()}
    if not _is_rank_zero():
        return results
    write_results(done, results)
    failed.unlink(missing_ok=True)
    log.info("results: %s", done)
    return results
