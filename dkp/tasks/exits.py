"""Exit evaluation: a model that stops early, scored at one or many operating points.

The checkpoint is an :class:`~dkp.lightning.exiting.EarlyExiting` module (early exit along its
route, or DKP as dynamic DKP). Each operating point's thresholds are set by hand
(``thresholds``) or chosen on ``select_split`` for a mean-GFLOPs budget (``budget``, or
``budget_fraction`` of the full model's cost; several budgets make a curve). The data are
decoded once, every checkpoint scored once, and every point follows from those scores; batched
inference with real stopping is timed for every point side by side with the full model.

A single point writes ``results.json`` in the run directory; several write ``NN/results.json``
(one curve point each). Beside them: ``exit_counts.{md,csv}`` (videos stopping at each
checkpoint, one row per point), ``predictions.csv`` and ``scores.npz`` (every class's
probability, for bootstrap intervals) per point, and ``exit_examples.png``
(videos stopping at the first, a middle and the last checkpoint) for the point nearest
``examples_at``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from dkp.data.annotations.records import RecordSet
from dkp.data.batch import Batch
from dkp.evaluation.bootstrap import map_replicates, top1_replicates, weights_with_full_set
from dkp.evaluation.early_exit.scores import ExitOutcome, ExitScores
from dkp.evaluation.early_exit.timing import time_policies
from dkp.evaluation.predictions import PredictionRow, top_classes, write_csv
from dkp.evaluation.video_scores import SCORES_FILE, VideoScores, write_scores
from dkp.lightning import load_module
from dkp.lightning.base import VideoModule
from dkp.lightning.dkp import DKPModule
from dkp.lightning.exiting import EarlyExiting
from dkp.models.dkp.selector import FrameSelector, inside_segments
from dkp.models.early_exit.policy import ExitPolicy, StopScore, max_probability
from dkp.models.early_exit.stopping import LearnedStop
from dkp.reporting.exit_examples import ExitExample, pick_examples, plot_exit_examples
from dkp.reporting.tables import interval_cell, write_exit_counts, write_table
from dkp.runtime.checks import check_config
from dkp.runtime.config import build_object
from dkp.runtime.results import ExitSummary, Results

log = logging.getLogger(__name__)


def load_batches(
    module: VideoModule, data: DictConfig, splits: Sequence[str], sampling: dict | None = None
) -> tuple[dict[str, list[Batch]], dict[str, RecordSet]]:
    """Decode each split once into a list of batches (kept in memory: the model is then run
    and timed on them without decoding), sampled as the checkpoint was trained, with the
    ``sampling`` overrides; and each split's records (their action segments)."""
    config = {"_target_": "dkp.data.sampling.build_sampling", **module.sampling_config(sampling)}
    datamodule = build_object(data, sampling=config)
    datamodule.adapt_to(module)
    datamodule.prepare_data()
    out, records = {}, {}
    for split in dict.fromkeys(splits):
        out[split] = [b for b in datamodule.eval_dataloader(split) if len(b)]
        records[split] = datamodule.records(split)
    return out, records


def fit_frame_selector(
    batches: Sequence[Batch], records: RecordSet, cfg: DictConfig
) -> FrameSelector:
    """A :class:`FrameSelector` fitted on the student frames of ``batches``, each labelled by
    whether it lies inside one of its video's annotated action segments (``records``)."""
    segments = {r.video_id: r.segments for r in records.records}
    if not any(segments.values()):
        raise ValueError(
            f"frame_selector.split: the {cfg.split} split's annotations have no action segments"
        )
    frames, inside = [], []
    for batch in batches:
        for b, video_id in enumerate(batch.video_ids):
            real = batch.student_mask[b]
            frames.append(batch.student_frames[b][real])
            inside.append(inside_segments(batch.student_times[b][real], segments[video_id]))
    return FrameSelector.fit(
        torch.cat(frames), torch.cat(inside), int(cfg.width), int(cfg.epochs), seed=int(cfg.seed)
    )


def operating_points(cfg: DictConfig) -> list[dict[str, Any]]:
    """The points ``cfg`` asks for: one per budget or budget fraction (a number or a list),
    else one with ``thresholds`` (a number, one per checkpoint, or null: never early)."""
    keys = ("budget_fraction", "budget", "thresholds")
    spec = OmegaConf.to_container(OmegaConf.create({k: cfg.get(k) for k in keys}), resolve=True)
    given = [k for k in ("budget_fraction", "budget") if spec.get(k) is not None]
    if len(given) > 1 or (given and spec.get("thresholds") is not None):
        raise ValueError("budget_fraction, budget, thresholds: give one of them")
    if not given:
        return [{"thresholds": spec.get("thresholds")}]
    key = given[0]
    values = spec[key] if isinstance(spec[key], list) else [spec[key]]
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{key}: {value!r} is not a positive number")
    return [{key: float(v)} for v in values]


def stop_score(name: str, select: ExitScores | None) -> StopScore:
    """The stopping score ``name`` (``max_probability``, or ``learned``: fitted on the
    selection split's checkpoint scores, see :class:`LearnedStop`)."""
    if name == "max_probability":
        return max_probability
    if name != "learned":
        raise ValueError(f"stop_score: {name!r} is not 'max_probability' or 'learned'")
    if select is None:
        raise ValueError("stop_score: 'learned' is fitted on select_split; give a budget")
    return LearnedStop.fit(select.probs, select.right())


def exit_summary(
    point: dict[str, Any],
    select: ExitScores | None,
    full_gflops: float,
    k: int,
    split: str,
    score: StopScore = max_probability,
) -> ExitSummary:
    """The thresholds of ``point`` (chosen on ``select`` for a budget), without the counts."""
    budget = point.get("budget")
    if point.get("budget_fraction") is not None:
        budget = point["budget_fraction"] * full_gflops
    if budget is None:
        policy = ExitPolicy.of(point.get("thresholds"), k)
        return ExitSummary([], list(policy.thresholds), [])
    threshold, achieved = select.select_threshold(budget, score)
    return ExitSummary(
        [],
        list(ExitPolicy.of(threshold, k).thresholds),
        [],
        select_split=split,
        budget=budget,
        budget_fraction=point.get("budget_fraction"),
        selected_gflops=achieved,
    )


def exits(cfg: DictConfig) -> Results | dict[str, Results]:
    """Score ``cfg.ckpt_path`` at every operating point of ``cfg`` (Hydra job, conf/exits.yaml)."""
    check_config(cfg, ("data",))
    pl.seed_everything(cfg.seed, workers=True)
    torch.set_num_threads(int(cfg.threads))
    points = operating_points(cfg)
    module = load_module(cfg.ckpt_path, field="ckpt_path")
    if not isinstance(module, EarlyExiting):
        raise ValueError(f"ckpt_path: a {module.kind!r} model has no exits; use early_exit or dkp")
    selecting = bool(cfg.get("frame_selector") and cfg.frame_selector.enabled)
    if selecting and not isinstance(module, DKPModule):
        raise ValueError(f"frame_selector.enabled: a {module.kind!r} model has no teacher frames")
    needs_select = (
        any("thresholds" not in p for p in points) or cfg.stop_score == "learned" or selecting
    )
    splits = [cfg.split, cfg.select_split] if needs_select else [cfg.split]
    overrides = OmegaConf.to_container(cfg.sampling, resolve=True) if cfg.get("sampling") else {}
    if selecting:
        splits.append(cfg.frame_selector.split)
        overrides["n_t"] = int(cfg.frame_selector.candidates)
    batches, records = load_batches(module, cfg.data, splits, overrides)
    if selecting:
        split = cfg.frame_selector.split
        selector = fit_frame_selector(batches[split], records[split], cfg.frame_selector)
        limit = cfg.frame_selector.limit or module.sampling_config().get("n_t")
        module.use_frame_selector(selector, limit)
    test = ExitScores.of(module, batches[cfg.split])
    select = ExitScores.of(module, batches[cfg.select_split]) if needs_select else None
    k = test.num_checkpoints
    series = cfg.get("series") or module.exit_series
    score = stop_score(cfg.stop_score, select)
    scored: list[tuple[Results, ExitOutcome]] = []
    for point in points:
        try:
            full = test.checkpoint_gflops()[-1]
            chosen = exit_summary(point, select, full, k, cfg.select_split, score)
        except ValueError as err:
            if len(points) == 1:
                raise
            log.warning("%s skipped: %s", point, err)
            continue
        policy = ExitPolicy(tuple(chosen.thresholds), score)
        outcome = test.exits(policy)
        metrics = outcome.metrics(test.target, cfg.split)
        if select is not None:
            metrics.update(select.exits(policy).metrics(select.target, cfg.select_split))
        summary = dataclasses.replace(
            chosen,
            counts=outcome.counts(k),
            checkpoint_gflops=test.checkpoint_gflops(),
            score=cfg.stop_score,
        )
        results = Results(
            metrics=metrics,
            cost=outcome.cost(),
            task=cfg.get("task_name") or "exits",
            kind=module.kind,
            networks=list(module.networks),
            split=cfg.split,
            num_videos=len(test.video_ids),
            sampling=module.sampling_config(overrides),
            series=series,
            checkpoint=str(Path(cfg.ckpt_path).resolve()),
            exits=summary,
        )
        scored.append((results, outcome))
    if not scored:
        raise ValueError("no operating point could be scored (every budget is too small)")
    if cfg.timing:
        policies = [ExitPolicy(tuple(r.exits.thresholds), score) for r, _ in scored]
        timings = time_policies(module, batches[cfg.split], policies, int(cfg.timing_repeats))
        for (results, _), timing in zip(scored, timings, strict=True):
            results.timing = timing
    out_dir = Path(cfg.paths.output_dir)
    classes = module.class_names()
    subdirs = [""] if len(scored) == 1 else [f"{i:02d}" for i in range(len(scored))]
    table = {}
    for sub, (results, outcome) in zip(subdirs, scored, strict=True):
        rows = prediction_rows(test, outcome, classes)
        write_csv(rows, out_dir / sub / "predictions.csv", 5)
        scores = VideoScores(
            np.asarray(test.video_ids), outcome.probs.numpy(), test.target.numpy(), outcome.gflops
        )
        write_scores(out_dir / sub / SCORES_FILE, scores)
        table[point_label(results)] = results.exits.counts
    write_exit_counts(table, out_dir)
    write_checkpoint_table(test, out_dir)
    if cfg.get("examples_at") is not None:
        at = min(scored, key=lambda s: abs(_fraction(s[0]) - float(cfg.examples_at)))
        figure = out_dir / "exit_examples.png"
        examples_figure(test, at[1], batches[cfg.split], classes, figure, point_label(at[0]))
    if len(scored) == 1:
        return scored[0][0]
    return dict(zip(subdirs, [r for r, _ in scored], strict=True))


def write_checkpoint_table(scores: ExitScores, out_dir: Path, replicates: int = 1000) -> list[Path]:
    """``checkpoints.{md,csv}``: what each checkpoint scores with every video stopped there,
    and the oracle (each video at its first right checkpoint): the least cost any stopping
    rule on these checkpoints could pay for the accuracy they allow. Scores carry their 95 %
    bootstrap interval over the videos."""
    full = scores.checkpoint_gflops()[-1]
    header = ["Checkpoint", "frames (student, teacher)", "GFLOPs", "of full", "top-1 (%)",
              "mAP (%)"]  # fmt: skip
    every = len(scores.video_ids)
    outcomes = [(str(k + 1), scores.outcome_at(np.full(every, k)))
                for k in range(scores.num_checkpoints)]  # fmt: skip
    outcomes.append(("oracle (knows the labels)", scores.oracle()))
    weights = weights_with_full_set(every, replicates)
    target = scores.target.numpy()
    rows = []
    for label, outcome in outcomes:
        probs = outcome.probs.float().numpy()
        student, teacher = outcome.frames.mean(0)
        gflops = float(outcome.gflops.mean())
        rows.append([
            label, f"{student:.1f}, {teacher:.1f}", f"{gflops:.4f}", f"{gflops / full:.0%}",
            interval_cell(100 * top1_replicates(probs, target, weights)),
            interval_cell(100 * map_replicates(probs, target, weights)),
        ])  # fmt: skip
    return write_table(header, rows, out_dir, "checkpoints")


def _fraction(results: Results) -> float:
    """A point's budget as a fraction of the full model's mean GFLOPs (else its cost's)."""
    if results.exits.budget_fraction is not None:
        return results.exits.budget_fraction
    return results.cost.gflops / results.exits.checkpoint_gflops[-1]


def point_label(results: Results) -> str:
    """A point's row name in the exit-count table: series, budget and threshold."""
    exits = results.exits
    if exits.budget_fraction is not None:
        where = f"budget {exits.budget_fraction:.0%}"
    elif exits.budget is not None:
        where = f"budget {exits.budget:.4g} GFLOPs"
    else:
        where = "set by hand"
    return f"{results.series}, {where} (t = {exits.thresholds[0]:.3g})"


def prediction_rows(
    test: ExitScores, outcome: ExitOutcome, classes: Sequence[str]
) -> list[PredictionRow]:
    """One row per test video: top classes where it stopped, its GMACs and checkpoint."""
    return [
        PredictionRow(
            video_id=vid,
            top=top_classes(outcome.probs[i], classes, 5),
            gflops=float(outcome.gflops[i]),
            exit_checkpoint=int(outcome.exit_index[i]) + 1,
        )
        for i, vid in enumerate(test.video_ids)
    ]


def _frames_of(batches: Sequence[Batch], index: int) -> np.ndarray:
    """Frames ``(N, H, W, 3)`` of video ``index`` (teacher stream if present, else student)."""
    for b in batches:
        if index < len(b):
            frames = b.teacher_frames if b.teacher_frames is not None else b.student_frames
            return frames[index].permute(0, 2, 3, 1).numpy()
        index -= len(b)
    raise IndexError(index)


def examples_figure(
    test: ExitScores,
    outcome: ExitOutcome,
    batches: Sequence[Batch],
    classes: Sequence[str],
    out_path: Path,
    title: str,
) -> Path:
    """The supplement's figure for one operating point."""
    predicted = outcome.probs.argmax(dim=1)
    truth = test.target.argmax(dim=1)
    correct = (test.target.gather(1, predicted.unsqueeze(1)).squeeze(1) > 0).numpy()
    rows = []
    for k, picked in pick_examples(outcome.exit_index, correct, test.num_checkpoints):
        examples = [
            ExitExample(
                test.video_ids[i],
                _frames_of(batches, i),
                k + 1,
                classes[int(predicted[i])],
                classes[int(truth[i])],
            )
            for i in picked
        ]
        rows.append((k, examples))
    return plot_exit_examples(rows, out_path, title=title)
