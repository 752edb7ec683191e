"""The files a job leaves: ``results.json`` (one :class:`Results`) or ``failed.json``.

Every job writes the same :class:`Results` (train, eval, each point of an exit curve), and
the curve code reads it back with :func:`read_results`: the one contract between the jobs and
the figures. Files are written atomically (:mod:`dkp.runtime.atomic`), so a reader never sees
half of one. Non-finite numbers are written as ``null``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dkp.runtime.atomic import write_json

RESULTS_FILE = "results.json"
FAILED_FILE = "failed.json"
#: Version of the results.json layout; 1 is the layout before it had one.
RESULTS_VERSION = 2


class ResultsError(ValueError):
    """A results.json that cannot be read as :class:`Results`; the message names the field."""


@dataclass(frozen=True)
class CostSummary:
    """GMACs ("GFLOPs") per video over the scored videos, and the frames they ran."""

    gflops: float
    gflops_std: float = 0.0
    gflops_min: float = math.nan
    gflops_max: float = math.nan
    frames_student: float = math.nan
    frames_teacher: float = math.nan

    @classmethod
    def of(cls, gflops: Sequence[float], frames: Sequence[Sequence[float]]) -> CostSummary:
        """Mean and spread of each video's ``gflops``; mean (student, teacher) ``frames``."""
        g = np.asarray(gflops, np.float64)
        f = np.asarray(frames, np.float64).reshape(-1, 2)
        if not len(g):
            return cls(math.nan)
        return cls(
            float(g.mean()),
            float(g.std()),
            float(g.min()),
            float(g.max()),
            float(f[:, 0].mean()),
            float(f[:, 1].mean()),
        )


@dataclass(frozen=True)
class ExitSummary:
    """Where videos stopped: how many at each checkpoint, the thresholds that made them, the
    mean GMACs of stopping at each checkpoint, and how the thresholds were chosen."""

    counts: list[int]
    thresholds: list[float]
    checkpoint_gflops: list[float]
    select_split: str | None = None  # where thresholds for a budget were chosen
    budget: float | None = None  # mean GFLOPs asked for on select_split
    budget_fraction: float | None = None  # the budget as a fraction of the full model's
    selected_gflops: float | None = None  # the mean GFLOPs reached on select_split
    score: str = "max_probability"  # the stopping score the thresholds apply to

    @property
    def total(self) -> int:
        return int(sum(self.counts))


@dataclass(frozen=True)
class Timing:
    """Wall-clock seconds of batched inference with early stopping, next to the full model."""

    seconds: float
    full_seconds: float
    videos: int
    threads: int
    repeats: int

    @property
    def speedup(self) -> float:
        return self.full_seconds / self.seconds if self.seconds > 0 else math.nan


@dataclass
class Results:
    """What one job measured: its metrics (fractions), cost and the setting that gave them."""

    metrics: dict[str, float]
    cost: CostSummary
    task: str = ""
    kind: str = ""  # the model's kind, as checkpoints record it
    networks: list[str] = field(default_factory=list)
    split: str = "test"
    num_videos: int = 0
    sampling: dict[str, Any] = field(default_factory=dict)
    views: int = 1  # views scored per video (temporal clips x spatial crops), scores averaged
    series: str | None = None  # the curve this point belongs to (None: from kind/sampling)
    checkpoint: str | None = None  # the checkpoint scored (evaluation jobs)
    best_checkpoint: str | None = None  # training jobs
    last_checkpoint: str | None = None
    skipped_videos: dict[str, dict[str, str]] = field(default_factory=dict)
    exits: ExitSummary | None = None
    timing: Timing | None = None
    overrides: list[str] = field(default_factory=list)
    slurm_job_id: str | None = None  # the SLURM job that ran it (SLURM_JOB_ID), if any
    version: int = RESULTS_VERSION

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.timing is not None:
            out["timing"]["speedup"] = self.timing.speedup
        if self.exits is not None:
            out["exits"]["total"] = self.exits.total
        return _jsonable(out)

    @classmethod
    def from_dict(cls, data: Any) -> Results:
        """Results from a parsed results.json; :class:`ResultsError` names what is wrong."""
        if not isinstance(data, dict):
            raise ResultsError("not a JSON object")
        version = data.get("version", 1)
        if not isinstance(version, int) or version > RESULTS_VERSION:
            raise ResultsError(f"version {version!r} is newer than this dkp reads")
        for name in ("metrics", "cost"):
            if not isinstance(data.get(name), dict):
                raise ResultsError(f"no {name!r} object")
        gflops = data["cost"].get("gflops", "missing")
        if isinstance(gflops, bool) or not isinstance(gflops, (int, float)):
            raise ResultsError(f"cost.gflops is {json.dumps(gflops)}")  # null: not finite
        cost = _nested(CostSummary, data["cost"], "cost", nulls=math.nan)
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["cost"] = cost
        for name, kind in (("exits", ExitSummary), ("timing", Timing)):
            if isinstance(values.get(name), dict):
                values[name] = _nested(kind, values[name], name)
        return cls(**values)

    def score(self, metric: str, split: str) -> float:
        """``metrics[split/metric]`` as a fraction; :class:`ResultsError` if absent or not one."""
        key = f"{split}/{metric}"
        if key not in self.metrics:
            raise ResultsError(f"metrics.{key} is missing")
        value = self.metrics[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResultsError(f"metrics.{key} is {json.dumps(value)}")  # null: not finite
        if not 0.0 <= value <= 1.0:
            raise ResultsError(f"metrics.{key} = {value} is not a fraction in [0, 1]")
        return float(value)


def _nested(kind: type, data: dict[str, Any], where: str, nulls: Any = None) -> Any:
    """``kind`` from its JSON object (unknown keys ignored; ``null`` read as ``nulls``)."""
    known = {f.name: f for f in dataclasses.fields(kind)}
    missing_default = dataclasses.MISSING
    required = [n for n, f in known.items() if f.default is f.default_factory is missing_default]
    missing = [name for name in required if name not in data]
    if missing:
        raise ResultsError(f"{where}.{missing[0]} is missing")
    return kind(**{k: (nulls if v is None else v) for k, v in data.items() if k in known})


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def write_results(path: str | os.PathLike[str], results: Results) -> Path:
    """Write ``results`` as JSON, atomically."""
    return write_json(path, results.to_dict(), sort_keys=True)


def read_results(path: str | os.PathLike[str]) -> Results:
    """Read a results.json; ``OSError``/``ValueError`` (JSON) or :class:`ResultsError`."""
    with Path(path).open(encoding="utf-8") as f:
        return Results.from_dict(json.load(f))


@dataclass(frozen=True)
class Failure:
    """What a failed sweep job leaves in ``failed.json``."""

    error: str
    overrides: list[str] = field(default_factory=list)
    traceback: str = ""

    @property
    def first_line(self) -> str:
        return self.error.strip().split("\n")[0][:200] if self.error else "no error recorded"


def write_failure(path: str | os.PathLike[str], failure: Failure) -> Path:
    return write_json(path, asdict(failure), sort_keys=True)


def read_failure(path: str | os.PathLike[str]) -> Failure:
    with Path(path).open(encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    error, overrides = data.get("error"), data.get("overrides")
    return Failure(str(error or ""), list(overrides or []), str(data.get("traceback") or ""))


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The single numbers among logged metrics (tensors of one element included)."""
    return {k: float(v) for k, v in metrics.items() if getattr(v, "numel", lambda: 1)() == 1}


#: What a module logs about each evaluation epoch's cost besides its metrics, per stage.
COST_LOGS = (*(f.name for f in dataclasses.fields(CostSummary)), "num_videos")


def cost_of(logged: Mapping[str, Any], split: str) -> tuple[dict[str, float], CostSummary, int]:
    """Split logged numbers into metrics and the :class:`CostSummary` and number of videos
    ``split`` was scored on (see :class:`~dkp.lightning.base.VideoModule`)."""
    numbers = scalar_metrics(logged)
    cost_keys = {f"{stage}/{name}" for stage in ("val", "test") for name in COST_LOGS}
    metrics = {k: v for k, v in numbers.items() if k not in cost_keys}
    fields = {name: numbers.get(f"{split}/{name}", math.nan) for name in COST_LOGS}
    count = fields.pop("num_videos")
    return metrics, CostSummary(**fields), 0 if math.isnan(count) else int(count)
