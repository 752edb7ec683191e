"""``make bench``: generate (or reuse) the inputs, run every benchmark, print tables, save JSON.

python -m benchmarks.run                  # the full suite (120 s videos, 360p and 720p)
python -m benchmarks.run --quick          # 30 s videos at 360p, fewer repetitions
python -m benchmarks.run --only models    # the networks alone: videos/s, latency, GMACs
python -m benchmarks.run --only preparation  # paper-scale samples: originals vs prepared copies
python -m benchmarks.run --only evaluation   # bootstrap intervals: AP kernel vs scikit-learn
python -m benchmarks.run --compare A.json B.json
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

from benchmarks import decoding, evaluation, inputs, models, preparation, report, throughput

RESULTS = Path(__file__).resolve().parent / "results"
CASES = ((8, 112), (25, 224), (64, 112))  # frames per video and the model's input size


def decoding_section(args, out: dict) -> list[str]:
    seconds = 30.0 if args.quick else 120.0
    heights = (360,) if args.quick else (360, 720)
    rows, per_video, tables = [], [], []
    for spec in inputs.specs(seconds, heights):
        path = inputs.ensure(spec)
        facts = decoding.facts(path)
        # at least 3: a ratio of two bests, each of a few seconds' runs on a shared machine
        per_frame = decoding.per_frame_case(path, facts, CASES, max(3, args.reps))
        for n, size in CASES:
            row = {"video": spec.name, **decoding.read_case(path, facts, n, size, args.reps)}
            row["per_frame_skip"] = per_frame[(n, size)]
            rows.append(row)
            print(f"  {spec.name} n={n} size={size}: {row['x_mmaction2']:.1f}x", flush=True)
        per_video.append(
            {
                "video": spec.name,
                **decoding.index_case(path, facts, args.reps),
                **decoding.student_teacher_case(path, facts, args.reps),
                **decoding.conversions_case(path, facts),
            }
        )
    out["decoding"], out["per_video"] = rows, per_video
    has_decord = decoding.decord is not None
    tables.append(
        report.table(
            "Reading n uniformly spread frames (speed-ups are ratios measured side by side)",
            (
                "video",
                "n",
                "size",
                "decoded",
                "= min",
                "decoded (skip)",
                "= min",
                "keyframes",
                "from file",
                "x MMAction2",
                "x full",
                "x full (skip)",
                "skip gain",
                "decode time / seq. same frames",
                *(("x decord",) if has_decord else ()),
            ),
            [
                (
                    r["video"],
                    r["n"],
                    r["size"],
                    r["decoded"],
                    r["decoded"] == r["min"],
                    r["decoded_skip"],
                    r["decoded_skip"] == r["min_skip"],
                    r["keyframes_skip"],
                    r["file_reads"],
                    r["x_mmaction2"],
                    r["x_full"],
                    r["x_full_skip"],
                    r["skip_gain"],
                    r["per_frame_skip"],
                    *((r["x_decord"],) if has_decord else ()),
                )
                for r in rows
            ],
        )
    )
    tables.append(
        report.table(
            "Per video: packet index, student+teacher in one read, conversions",
            (
                "video",
                "index pass, share of a first 8-frame read",
                "index file, share of a later one",
                "x two reads",
                "conversions / kept",
            ),
            [
                (
                    v["video"],
                    v["index_share"],
                    v["index_file_share"],
                    v["x_two_reads"],
                    f"{v['conversions']}/{v['kept']}",
                )
                for v in per_video
            ],
        )
    )
    return tables


def memory_section(_args, out: dict) -> list[str]:
    specs = [inputs.VideoSpec("h264", 30, 640, 360, s) for s in (30.0, 120.0)]
    rows = []
    for spec in specs:
        path = inputs.ensure(spec)
        for method in ("reader", "full"):
            for n in (8, 64):
                m = decoding.memory_case(path, method, n, 224, int(spec.seconds))
                name = f"{spec.name} {spec.seconds:g}s"
                rows.append({"video": name, "method": method, "n": n, **m})
    out["memory"] = rows
    return [
        report.table(
            "Peak memory of one read at 224x224 (MB)",
            ("video", "method", "n", "numpy (tracemalloc)", "RSS growth"),
            [(r["video"], r["method"], r["n"], r["traced_mb"], r["rss_growth_mb"]) for r in rows],
        )
    ]


def throughput_section(args, out: dict) -> list[str]:
    reps = args.reps
    train = throughput.data_vs_train(batches=8 if args.quick else 24, reps=reps)
    fit = throughput.fit_rate(epochs=2)
    synthetic = sorted((throughput.ROOT / "data" / "synthetic" / "videos").glob("*.mp4"))
    source = inputs.ensure(inputs.VideoSpec("h264", 30, 640, 360, 30.0 if args.quick else 120.0))
    infer = [
        throughput.inference("embedded", synthetic[:8], 16, 4, reps),
        throughput.inference("paper", [source], 20, 5, reps),
    ]
    options = [
        throughput.execution_options("embedded", synthetic[0], 16, 4, 3 * reps, args.compile),
        throughput.execution_options("paper", source, 20, 5, reps, False),
    ]
    out.update(train=train, fit=fit, inference=infer, execution=options)
    return [
        report.table(
            "Data loading vs training step (embedded dataset, DKP, configured workers)",
            (
                "workers",
                "torch threads",
                "batch",
                "1st run: indexing before the fit (videos, s)",
                "data batches/s, 1st epoch of 1st run",
                "1st epoch of later runs",
                "later epochs",
                "train steps/s",
                "later epochs / train",
            ),
            [
                (
                    train["workers"],
                    train["torch_threads"],
                    train["batch_size"],
                    f"{train['indexed_videos']}, {train['indexing_s']:.2f}",
                    train["data_batches_s_first_run"],
                    train["data_batches_s_first"],
                    train["data_batches_s"],
                    train["train_steps_s"],
                    train["data_over_train"],
                )
            ],
        ),
        report.table(
            "A real fit: dkp-train experiment=dkp on the embedded data, 2 epochs, no validation",
            ("torch threads", "steps/s, epoch 1", "steps/s, epoch 2", "waiting for data"),
            [(fit["torch_threads"], *fit["steps_s"], f"{100 * fit['data_wait_share']:.1f} %")],
        ),
        report.table(
            "Inference on CPU: DKP vs the teacher alone on n_s frames (videos/s)",
            (
                "arch",
                "n_s/n_t",
                "GFLOPs DKP",
                "GFLOPs teacher",
                "GFLOPs ratio",
                "DKP",
                "teacher",
                "speed-up",
                "DKP +decode",
                "teacher +decode",
                "speed-up +decode",
            ),
            [
                (
                    r["arch"],
                    f"{r['n_s']}/{r['n_t']}",
                    r["gflops_dkp"],
                    r["gflops_teacher"],
                    r["gflops_ratio"],
                    r["videos_s_dkp"],
                    r["videos_s_teacher"],
                    r["speedup"],
                    r["videos_s_dkp_decode"],
                    r["videos_s_teacher_decode"],
                    r["speedup_decode"],
                )
                for r in infer
            ],
        ),
        report.table(
            "DKP forward: speed-up over torch.no_grad with contiguous weights",
            ("arch", "no_grad ms", "inference_mode", "channels-last", "compile", "compile s"),
            [
                (
                    r["arch"],
                    r["forward_ms"],
                    r["x_inference_mode"],
                    r["x_channels_last"],
                    r.get("x_compile", "-"),
                    r.get("compile_s", "-"),
                )
                for r in options
            ],
        ),
    ]


def models_section(args, out: dict) -> list[str]:
    rows = models.models_case(args.reps, args.quick)
    out["models"] = rows
    return models_tables(rows)


def models_tables(rows: list[dict]) -> list[str]:
    """One table per device of ``models.scale_case`` rows (also for rows saved as JSON)."""
    tables = []
    for device in dict.fromkeys(r["device"] for r in rows):
        mine = [r for r in rows if r["device"] == device]
        batches = sorted({int(b) for r in mine for b in r["videos_s"]})
        threads = f", {torch.get_num_threads()} threads" if device == "cpu" else ""
        where = "GPU" if device == "cuda" else device.upper()
        tables.append(
            report.table(
                f"The networks alone on the {where}{threads}: videos/s by batch size, "
                "latency at batch 1; speed-up over teacher-only next to its GFLOPs ratio, at "
                "the largest batch measured",
                (
                    "arch",
                    "model",
                    "frames x size",
                    "GFLOPs",
                    *(f"videos/s @{b}" for b in batches),
                    "ms/video @1",
                    "largest batch",
                    "GFLOPs/s",
                    "x teacher-only",
                    "GFLOPs ratio",
                ),
                [
                    (
                        r["arch"],
                        r["model"],
                        r["frames"],
                        r["gflops"],
                        *(r["videos_s"].get(str(b), "-") for b in batches),
                        r["latency_ms"],
                        r["largest_batch"],
                        r["gflops_s"],
                        r["x_teacher"],
                        r["gflops_ratio"],
                    )
                    for r in mine
                ],
            )
        )
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 s videos at 360p, fewer reps")
    parser.add_argument("--reps", type=int, help="repetitions of each method (default 2)")
    parser.add_argument(
        "--only",
        choices=["decoding", "memory", "throughput", "models", "preparation", "evaluation"],
        action="append",
    )
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON results")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    args = parser.parse_args(argv)
    if args.compare:
        print(report.compare(*args.compare))
        return 0
    args.reps = args.reps or 2
    start = time.perf_counter()
    out: dict = {
        "meta": {
            "quick": args.quick,
            "reps": args.reps,
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "decord": decoding.decord is not None,
        }
    }
    tables: list[str] = []
    sections = {
        "decoding": decoding_section,
        "memory": memory_section,
        "throughput": throughput_section,
        "models": models_section,
        "preparation": preparation.section,
        "evaluation": evaluation.section,
    }
    for name, section in sections.items():
        if not args.only or name in args.only:
            print(f"{name} ...", flush=True)
            began = time.perf_counter()
            tables += section(args, out)
            out["meta"][f"{name}_seconds"] = time.perf_counter() - began
    out["meta"]["seconds"] = time.perf_counter() - start
    print("\n".join(tables))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = report.save(out, args.out, stamp)
    print(f"\n{os.cpu_count()} cores, {out['meta']['seconds']:.0f} s; results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
