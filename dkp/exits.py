"""Early-exit and dynamic-DKP evaluation: ``python -m dkp.exits ckpt_path=PATH [budget=...]``.

Scores an ``early_exit`` checkpoint (exits along its route) or a ``dkp`` checkpoint (dynamic
DKP: the student first, teacher + fusion only for unsure videos) on ``split``, with
thresholds set by hand (``thresholds``) or chosen on ``select_split`` for a mean-GFLOPs
budget (``budget``, or ``budget_fraction`` of the full model's cost; see
:mod:`dkp.evaluation.exits`). Writes, in the run directory, ``results.json`` (the shape
dkp-curves reads, plus per-checkpoint exit counts and the measured wall-clock time of batched
inference), ``exit_counts.{md,csv}`` and ``predictions.csv``. :func:`exit_curve` scores many
budgets from one decode of the data (what ``make curves`` calls).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from dkp.data.batch import Batch
from dkp.evaluation.cost import cost_model
from dkp.evaluation.exit_cost import route_costs, route_frames, unit_costs
from dkp.evaluation.exits import (
    ExitScores,
    common,
    exit_counts,
    exits_for,
    outcome_cost,
    outcome_metrics,
    select_threshold,
    write_exit_tables,
)
from dkp.evaluation.predictions import PredictionRow, top_classes, write_csv
from dkp.evaluation.results import write_results
from dkp.jobs import run_job
from dkp.models.dynamic_dkp import dynamic_dkp_inference
from dkp.models.early_exit import as_thresholds, progressive_inference
from dkp.models.frame_net import masked_mean
from dkp.modules import load_module
from dkp.modules.base import VideoModule
from dkp.train import CONFIG_DIR, build_object, check_streams

log = logging.getLogger(__name__)
KINDS = ("early_exit", "dkp")


# --- data -------------------------------------------------------------------------------
def sampling_config(module: VideoModule, overrides: dict | None = None) -> dict[str, Any]:
    """The checkpoint's training sampling (``build_sampling`` config) with ``overrides``."""
    recorded = dict(module.hparams.get("sampling") or {"strategy": "adaptive", "n_t": 4})
    recorded.update({k: v for k, v in (overrides or {}).items() if v is not None})
    recorded["networks"] = list(module.networks)
    return {"_target_": "dkp.data.sampling.build_sampling", **recorded}


def load_batches(
    module: VideoModule,
    data_cfg: DictConfig,
    splits: Sequence[str],
    sampling: dict | None = None,
) -> dict[str, list[Batch]]:
    """Decode each split once into a list of batches (kept in memory: the model is then run
    and timed on them without decoding); ``sampling`` overrides the checkpoint's."""
    datamodule = build_object(data_cfg, sampling=sampling_config(module, sampling))
    check_streams(module, datamodule)
    datamodule.prepare_data()
    loaders = {"val": datamodule.val_dataloader, "test": datamodule.test_dataloader}
    out = {}
    for split in dict.fromkeys(splits):
        datamodule.setup("validate" if split == "val" else "test")
        out[split] = [b for b in loaders[split]() if len(b)]
    return out


# --- scores -----------------------------------------------------------------------------
@torch.no_grad()
def early_exit_scores(module: VideoModule, batches: Sequence[Batch]) -> ExitScores:
    """Every checkpoint's probabilities (one full forward per batch) and the route's costs."""
    net = module.net.eval()
    costs = route_costs(net, unit_costs(net, module.input_sizes[module.role]))
    seen = route_frames(net)
    probs = torch.cat([module(b).float().softmax(-1) for b in batches])
    v = probs.shape[0]
    frames = np.zeros((v, len(seen), 2))
    frames[:, :, 0 if module.role == "student" else 1] = seen
    return ExitScores(
        probs,
        np.tile(np.asarray(costs), (v, 1)),
        frames,
        torch.cat([b.target for b in batches]),
        [vid for b in batches for vid in b.video_ids],
    )


@torch.no_grad()
def dynamic_dkp_scores(module: VideoModule, batches: Sequence[Batch]) -> ExitScores:
    """Checkpoint 1: the student alone; checkpoint 2: the full DKP ensemble."""
    net = module.net.eval()
    model = cost_model(module)
    probs, costs, frames = [], [], []
    for b in batches:
        out = net(b)
        student = masked_mean(out.student_logits.float().softmax(-1), b.student_mask)
        probs.append(torch.stack([student, out.video_probs.float()], dim=1))
        n_s = b.student_mask.sum(1).tolist()
        n_t = b.teacher_mask.sum(1).tolist()
        for s, t in zip(n_s, n_t, strict=True):
            costs.append([s * model.student_frame, model.video(int(s), int(t))])
            frames.append([[s, 0], [s, t]])
    return ExitScores(
        torch.cat(probs),
        np.asarray(costs, dtype=np.float64),
        np.asarray(frames, dtype=np.float64),
        torch.cat([b.target for b in batches]),
        [vid for b in batches for vid in b.video_ids],
    )


def scores_for(module: VideoModule, batches: Sequence[Batch]) -> ExitScores:
    if module.kind == "early_exit":
        return early_exit_scores(module, batches)
    if module.kind == "dkp":
        return dynamic_dkp_scores(module, batches)
    raise ValueError(f"{module.kind!r} checkpoints have no exits; use one of {KINDS}")


# --- real batched inference, timed ------------------------------------------------------
@torch.no_grad()
def run_batched(module: VideoModule, batches: Sequence[Batch], thresholds: Sequence[float]):
    """Run the model with early stopping on every batch; returns the exit indices."""
    exits = []
    for b in batches:
        if module.kind == "early_exit":
            exits.append(progressive_inference(module.net, module.frames(b), thresholds).exit_index)
        else:
            exits.append(dynamic_dkp_inference(module.net, b, thresholds[0]).exit_index)
    return torch.cat(exits).numpy()


@torch.no_grad()
def run_full(module: VideoModule, batches: Sequence[Batch]) -> None:
    """The full model on every batch, without the early-stopping machinery (reference time)."""
    for b in batches:
        module(b)


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def time_points(
    module: VideoModule,
    batches: Sequence[Batch],
    points: Sequence[Sequence[float]],
    repeats: int = 5,
) -> tuple[list[float], float]:
    """Wall-clock seconds of batched inference at each thresholds setting, and of the full
    model's plain forward: interleaved rounds, best of ``repeats`` each (so a busy machine
    slows every setting alike)."""
    best = [float("inf")] * len(points)
    full = float("inf")
    for _ in range(repeats):
        full = min(full, _seconds(lambda: run_full(module, batches)))
        for i, thresholds in enumerate(points):
            best[i] = min(best[i], _seconds(lambda t=thresholds: run_batched(module, batches, t)))
    return best, full


def timing(seconds: float, full_seconds: float, batches: Sequence[Batch], repeats: int) -> dict:
    """The timing record of one point."""
    return {
        "seconds": seconds,
        "full_seconds": full_seconds,
        "speedup": full_seconds / seconds if seconds > 0 else None,
        "videos": sum(len(b) for b in batches),
        "threads": torch.get_num_threads(),
        "repeats": repeats,
    }


# --- points -----------------------------------------------------------------------------
def choose_thresholds(
    spec: dict[str, Any], select: ExitScores | None, full_cost: float, k: int
) -> tuple[list[float], dict[str, Any]]:
    """Thresholds from a point spec: ``thresholds``, ``budget`` or ``budget_fraction``."""
    budget = spec.get("budget")
    if budget is None and spec.get("budget_fraction") is not None:
        budget = float(spec["budget_fraction"]) * full_cost
    if budget is None:
        return as_thresholds(spec.get("thresholds"), k), {}
    if select is None:
        raise ValueError("a budget needs scores on the selection split")
    t, achieved = select_threshold(select, float(budget))
    return common(t, k), {"budget": float(budget), "selected_gflops": achieved}


def score_point(
    module: VideoModule,
    test: ExitScores,
    select: ExitScores | None,
    spec: dict[str, Any],
    split: str = "test",
    select_split: str = "val",
) -> tuple[dict[str, Any], Any]:
    """The results of one operating point on ``test`` (thresholds from ``spec``)."""
    k = test.num_checkpoints
    full_cost = float(test.costs[:, -1].mean())
    thresholds, chosen = choose_thresholds(spec, select, full_cost, k)
    outcome = exits_for(test, thresholds)
    metrics = outcome_metrics(outcome, test.target, split)
    if select is not None:
        metrics.update(outcome_metrics(exits_for(select, thresholds), select.target, select_split))
    counts = exit_counts(outcome.exit_index, k)
    results = {
        "kind": module.kind,
        "networks": list(module.networks),
        "split": split,
        "metrics": metrics,
        "cost": outcome_cost(outcome),
        "num_videos": len(test.video_ids),
        "exits": {
            "counts": counts,
            "total": int(sum(counts)),
            "thresholds": thresholds,
            "checkpoint_gflops": test.costs.mean(axis=0).tolist(),
            "select_split": select_split if chosen else None,
            **chosen,
        },
    }
    return results, outcome


def prediction_rows(test: ExitScores, outcome, classes: Sequence[str]) -> list[PredictionRow]:
    return [
        PredictionRow(
            video_id=vid,
            top=top_classes(outcome.probs[i], classes, 5),
            gflops=float(outcome.gflops[i]),
            exit_checkpoint=int(outcome.exit_index[i]) + 1,
        )
        for i, vid in enumerate(test.video_ids)
    ]


def default_series(module: VideoModule) -> str:
    if module.kind == "dkp":
        return "Dynamic DKP"
    backbone = type(module.net.body).__name__
    return "Early exit (MSDNet)" if backbone == "MSDNet" else "Early exit (ResNet)"


def write_point(
    out_dir: Path,
    results: dict[str, Any],
    test: ExitScores,
    outcome,
    classes: Sequence[str],
    label: str,
) -> Path:
    """results.json, exit_counts.{md,csv} and predictions.csv of one point in ``out_dir``."""
    write_exit_tables({label: results["exits"]["counts"]}, out_dir)
    write_csv(prediction_rows(test, outcome, classes), out_dir / "predictions.csv", 5)
    return write_results(out_dir / "results.json", results)


# --- entry points -----------------------------------------------------------------------
def evaluate_exits(cfg: DictConfig) -> dict[str, Any]:
    """One operating point of ``cfg.ckpt_path`` (Hydra job; see conf/exits.yaml)."""
    pl.seed_everything(cfg.seed, workers=True)
    torch.set_num_threads(int(cfg.threads))
    module = load_module(cfg.ckpt_path).eval()
    spec = {k: cfg.get(k) for k in ("thresholds", "budget", "budget_fraction")}
    spec = OmegaConf.to_container(OmegaConf.create(spec), resolve=True)
    needs_select = spec.get("budget") is not None or spec.get("budget_fraction") is not None
    splits = [cfg.split, cfg.select_split] if needs_select else [cfg.split]
    sampling = OmegaConf.to_container(cfg.sampling, resolve=True) if cfg.get("sampling") else {}
    batches = load_batches(module, cfg.data, splits, sampling=sampling)
    test = scores_for(module, batches[cfg.split])
    select = scores_for(module, batches[cfg.select_split]) if needs_select else None
    results, outcome = score_point(module, test, select, spec, cfg.split, cfg.select_split)
    if cfg.timing:
        (seconds,), full = time_points(module, batches[cfg.split], [results["exits"]["thresholds"]])
        results["timing"] = timing(seconds, full, batches[cfg.split], 5)
    classes = module.hparams.get("classes") or [f"class_{i}" for i in range(test.probs.shape[2])]
    series = cfg.get("series") or default_series(module)
    results.update(
        {
            "task": cfg.get("task_name"),
            "series": series,
            "checkpoint": str(Path(cfg.ckpt_path).resolve()),
            "select_split": cfg.select_split if needs_select else None,
            "sampling": sampling_config(module, sampling),
        }
    )
    out_dir = Path(cfg.paths.output_dir)
    write_exit_tables({series: results["exits"]["counts"]}, out_dir)
    write_csv(prediction_rows(test, outcome, classes), out_dir / "predictions.csv", 5)
    return results


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="exits")
def main(cfg: DictConfig) -> None:
    run_job(cfg, evaluate_exits)


if __name__ == "__main__":
    main()
