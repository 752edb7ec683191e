"""Early-exit and dynamic-DKP curve points from a trained checkpoint, for ``make curves``.

``python -m dkp.exit_curves --ckpt CKPT --data data/synthetic --out DIR`` decodes the
validation and test splits once, then for each budget (a fraction of the full model's mean
GFLOPs) chooses the threshold on validation, scores test and times batched inference. It
writes ``DIR/NN/results.json`` (one dkp-curves point each, with exit counts),
``DIR/exit_counts.{md,csv}`` (one row per point) and ``DIR/exit_examples.png`` (videos
stopping at the first, a middle and the last checkpoint). An ``early_exit`` checkpoint gives
"Early exit (ResNet|MSDNet)", a ``dkp`` checkpoint "Dynamic DKP".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from dkp.data.batch import Batch
from dkp.evaluation.exit_figures import ExitExample, pick_examples, plot_exit_examples
from dkp.evaluation.exits import ExitScores, write_exit_tables
from dkp.evaluation.results import read_results, write_results
from dkp.exits import (
    default_series,
    load_batches,
    sampling_config,
    score_point,
    scores_for,
    time_points,
    timing,
    write_point,
)
from dkp.modules import load_module
from dkp.modules.base import VideoModule
from dkp.train import CONFIG_DIR

log = logging.getLogger(__name__)
DEFAULT_FRACTIONS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.85, 1.0)
CURVE_FILE = "curve.json"  # not results.json: dkp-curves reads the points' own files


def data_config(data_root: str | Path, overrides: Sequence[str] = ()):
    """The ``data`` node of conf/exits.yaml for the dataset at ``data_root``.

    Composed outside a Hydra run, so ``paths.root_dir`` (which a run takes from its working
    directory) is set here as a run would set it."""
    root = os.environ.get("DKP_ROOT", os.getcwd())
    fixed = [f"data.root={Path(data_root).resolve()}", f"paths.root_dir={root}", "ckpt_path=-"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose("exits", overrides=[*fixed, *overrides])
    GlobalHydra.instance().clear()
    return cfg.data


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
    outcome: Any,
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
        rows.append(
            (
                k,
                [
                    ExitExample(
                        test.video_ids[i],
                        _frames_of(batches, i),
                        k + 1,
                        classes[int(predicted[i])],
                        classes[int(truth[i])],
                    )
                    for i in picked
                ],
            )
        )
    return plot_exit_examples(rows, out_path, title=title)


def exit_curve(
    ckpt_path: str | Path,
    out_dir: str | Path,
    data_root: str | Path = "data/synthetic",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    series: str | None = None,
    measure_time: bool = True,
    figure_fraction: float | None = 0.5,
    threads: int = 1,
    repeats: int = 5,
    overrides: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Score ``ckpt_path`` at every budget fraction; write one point per fraction under
    ``out_dir`` (see the module docstring); return the points' results. Already done (same
    checkpoint file, fractions, series and overrides): the stored points, nothing recomputed."""
    out_dir = Path(out_dir)
    key = _curve_key(ckpt_path, fractions, series, overrides)
    done = out_dir / CURVE_FILE
    if done.is_file():
        stored = read_results(done)
        if stored.get("key") == key:
            log.info("already done, skipping: %s", done)
            return stored["points"]
    torch.set_num_threads(threads)
    module: VideoModule = load_module(ckpt_path).eval()
    batches = load_batches(module, data_config(data_root, overrides), ["test", "val"])
    test, val = scores_for(module, batches["test"]), scores_for(module, batches["val"])
    classes = module.hparams.get("classes") or [f"class_{i}" for i in range(test.probs.shape[2])]
    series = series or default_series(module)
    scored, figure_at = [], None
    for fraction in fractions:
        try:
            results, outcome = score_point(module, test, val, {"budget_fraction": fraction})
        except ValueError as err:
            log.warning("budget fraction %.3g skipped: %s", fraction, err)
            continue
        results.update(
            {
                "task": "exit_curve",
                "series": series,
                "checkpoint": str(Path(ckpt_path).resolve()),
                "select_split": "val",
                "sampling": sampling_config(module),
                "budget_fraction": fraction,
            }
        )
        scored.append((results, outcome))
        if figure_fraction is not None and (
            figure_at is None or abs(fraction - figure_fraction) < abs(figure_at - figure_fraction)
        ):
            figure_at = fraction
    if measure_time and scored:
        settings = [r["exits"]["thresholds"] for r, _ in scored]
        seconds, full = time_points(module, batches["test"], settings, repeats)
        for (results, _), sec in zip(scored, seconds, strict=True):
            results["timing"] = timing(sec, full, batches["test"], repeats)
    points, table = [], {}
    for i, (results, outcome) in enumerate(scored):
        fraction = results["budget_fraction"]
        label = f"{series}, budget {fraction:.0%} (t = {results['exits']['thresholds'][0]:.3g})"
        write_point(out_dir / f"{i:02d}", results, test, outcome, classes, label)
        table[label] = results["exits"]["counts"]
        points.append(results)
        if fraction == figure_at:
            figure = out_dir / "exit_examples.png"
            examples_figure(test, outcome, batches["test"], classes, figure, label)
    if table:
        write_exit_tables(table, out_dir)
    write_results(done, {"key": key, "points": points})
    return points


def _curve_key(ckpt_path, fractions, series, overrides) -> str:
    stat = Path(ckpt_path).stat()
    blob = json.dumps(
        [str(Path(ckpt_path).resolve()), stat.st_size, stat.st_mtime_ns, list(fractions), series,
         list(overrides)]
    )  # fmt: skip
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def summary_tables(
    curves: dict[str, Sequence[dict[str, Any]]], out_dir: str | Path, fraction: float = 0.5
) -> tuple[Path, Path]:
    """The supplement's table across models: per series, the exit counts of its point whose
    budget fraction is nearest ``fraction``; ``out_dir/exit_counts.{csv,md}``."""
    rows = {}
    for series, points in curves.items():
        if points:
            p = min(points, key=lambda p: abs(p["budget_fraction"] - fraction))
            rows[f"{series} ({p['budget_fraction']:.0%} budget)"] = p["exits"]["counts"]
    return write_exit_tables(rows, out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dkp.exit_curves", description=__doc__)
    parser.add_argument("--ckpt", required=True, help="an early_exit or dkp checkpoint")
    parser.add_argument("--out", required=True, help="output directory (one subdir per point)")
    parser.add_argument("--data", default="data/synthetic", help="dataset root")
    parser.add_argument("--fractions", type=float, nargs="+", default=list(DEFAULT_FRACTIONS))
    parser.add_argument("--series", default=None)
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of conf/exits.yaml (data.*)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    points = exit_curve(
        args.ckpt,
        args.out,
        args.data,
        args.fractions,
        args.series,
        measure_time=not args.no_timing,
        threads=args.threads,
        overrides=args.overrides,
    )
    for p in points:
        t = p.get("timing", {})
        print(
            f"{p['series']}: budget {p['budget_fraction']:.0%}  GFLOPs {p['cost']['gflops']:.5f}  "
            f"mAP {100 * p['metrics']['test/mAP']:.2f}  top-1 {100 * p['metrics']['test/top1']:.2f}"
            f"  exits {p['exits']['counts']}"
            + (f"  time {t['seconds']:.3f}s (full model {t['full_seconds']:.3f}s)" if t else "")
        )
    return 0 if points else 1


if __name__ == "__main__":
    sys.exit(main())
