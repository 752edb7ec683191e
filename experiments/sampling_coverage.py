"""Adaptive vs fixed-interval sampling before training: how often each stream sees the action.

python experiments/sampling_coverage.py --data DIR --ckpt DKP.ckpt [--subset testing] [--out F.md]

For an ActivityNet-format dataset (``DIR/activity_net.v1-3.min.json`` + ``DIR/videos``) and the
per-frame costs of a DKP checkpoint, prints (and writes as Markdown) the share of videos where
a teacher / student frame lands inside an annotated action, for the sweeps of ``make curves``
(adaptive n_t and fixed r_t, ratios 4 and 8), with fixed-interval's difference from adaptive
interpolated at the same mean GFLOPs. Each share and difference carries a 95 % bootstrap
interval over the videos (the same replicates for all, so the differences are paired).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from dkp.data.annotations.activitynet import load_activitynet
from dkp.data.sampling import build_sampling
from dkp.evaluation.bootstrap import interpolate, weights_with_full_set
from dkp.evaluation.coverage import Coverage, segment_coverage
from dkp.lightning import load_module
from dkp.reporting.tables import interval_cell
from dkp.runtime.config import CONFIG_DIR


def sweep_values(recipe: str, key: str) -> list[float]:
    """The values ``conf/sweep/<recipe>.yaml`` sweeps ``key`` over."""
    params = OmegaConf.load(Path(CONFIG_DIR) / "sweep" / f"{recipe}.yaml").hydra.sweeper.params
    return [float(v) for v in str(params[key]).split(",")]


def swept_coverage(records, model, strategy: str, ratio: int) -> list[Coverage]:
    """The coverage at each point of ``conf/sweep/<strategy>.yaml`` (adaptive sweeps n_t,
    fixed-interval sweeps r_t)."""
    key, kind = ("n_t", int) if strategy == "adaptive" else ("r_t", float)
    return [
        segment_coverage(records, build_sampling(strategy, ratio=ratio, **{key: kind(v)}), model)
        for v in sweep_values(strategy, f"sampling.{key}")
    ]


def coverage_table(records, model, ratios=(4, 8), replicates: int = 1000) -> str:
    sweeps = {r: (swept_coverage(records, model, "adaptive", r),
                  swept_coverage(records, model, "fixed", r)) for r in ratios}  # fmt: skip
    videos = next(iter(sweeps.values()))[0][0].videos  # every coverage counts the same ones
    weights = weights_with_full_set(videos, replicates)
    lines = [
        "| series | GFLOPs | teacher sees the action (%) | student sees it (%) "
        "| teacher: fixed - adaptive at equal GFLOPs |",
        "|---|---:|---:|---:|---:|",
    ]
    for ratio, (adaptive, fixed) in sweeps.items():
        gf = np.array([a.gflops for a in adaptive])
        seen = np.stack([a.shares("teacher", weights) for a in adaptive])
        for name, rows in ((f"Adaptive-{ratio}", adaptive), (f"Fixed-{ratio}", fixed)):
            for row in rows:
                teacher = row.shares("teacher", weights)
                delta = ""
                if name.startswith("Fixed") and gf[0] <= row.gflops <= gf[-1]:
                    delta = interval_cell(teacher - interpolate(row.gflops, gf, seen), sign="+")
                student = interval_cell(row.shares("student", weights))
                lines.append(
                    f"| {name} | {row.gflops:.3f} | {interval_cell(teacher)} | {student} "
                    f"| {delta} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--ckpt", type=Path, required=True, help="a DKP checkpoint (for costs)")
    parser.add_argument("--subset", default="testing")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    records = load_activitynet(
        args.data / "activity_net.v1-3.min.json", args.data / "videos", subsets=[args.subset]
    ).records
    table = coverage_table(records, load_module(args.ckpt).cost_model())
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
