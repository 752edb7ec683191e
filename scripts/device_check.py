"""The GPU check that scripts/device_check.sh runs: one pass, a few minutes, one JSON and one
Markdown table.

1. the tests that run the model on CUDA (``pytest -m gpu``);
2. ``dkp-train`` of the teacher and of DKP at ``arch=paper`` in bf16 (``trainer=gpu``), a few
   dozen steps on generated videos;
3. the DKP checkpoint written by that GPU run, loaded by a process that sees no GPU, scores
   a batch as the GPU does; a state saved on the GPU reads back equal;
4. training and inference throughput (videos/s) of the teacher alone (n_s frames at its size),
   the student alone and DKP at batch 32 and 128, on frames already on the GPU and with
   decoding in the loop (DataLoader workers), next to each model's GFLOPs per video: DKP's
   speed-up over the teacher should track its GFLOPs ratio.

``--cpu-dry-run`` runs every step on the CPU at the embedded sizes, in about two minutes:
everything but CUDA itself is exercised (a slow test runs it).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
N_S, N_T = 20, 5  # the paper's frames per video: student, teacher
KINDS = ("teacher", "student", "dkp")
LABELS = {
    "teacher": "teacher alone (n_s frames)",
    "student": "student alone",
    "dkp": "DKP",
    "dkp_cl": "DKP, channels-last",
}
# Reported for TSM-R50, 8 frames, by AdaFocusV2 and Uni-AdaFocus: videos/s on an RTX 3090.
REFERENCE = "TSM-R50 (8 frames): 123-218 videos/s inference on an RTX 3090 (AdaFocusV2)"
TRACKS = 0.6  # DKP's measured speed-up must reach this share of its GFLOPs ratio


@dataclass(frozen=True)
class Plan:
    """What one run measures, and at what size: the GPU check or its CPU dry run."""

    arch: str
    device: str  # torch's device type
    trainer: tuple[str, ...]  # dkp-train overrides that choose the hardware
    precision: str
    video: tuple[int, int, int]  # generated videos: width, height, fps
    videos_per_class: tuple[int, int, int]
    durations: tuple[float, float]
    train_batch: int
    train_epochs: int
    batch_sizes: tuple[int, ...]
    n_s: int
    n_t: int
    workers: int
    min_s: float  # each throughput figure is timed over at least this long...
    max_s: float  # ...and at most this long (one step at least)
    warmup: int
    budget_s: float  # measurements past this point of the run are skipped, not run


GPU = Plan(
    arch="paper",
    device="cuda",
    trainer=("trainer=gpu",),
    precision="bf16-mixed",
    video=(320, 256, 25),
    videos_per_class=(4, 1, 1),
    durations=(6.0, 10.0),
    train_batch=8,
    train_epochs=6,
    batch_sizes=(32, 128),
    n_s=N_S,
    n_t=N_T,
    workers=min(16, os.cpu_count() or 1),
    min_s=2.0,
    max_s=6.0,
    warmup=2,
    budget_s=420.0,
)
DRY = Plan(
    arch="embedded",
    device="cpu",
    trainer=("trainer.accelerator=cpu",),
    precision="bf16-mixed",
    video=(64, 64, 10),
    videos_per_class=(2, 1, 1),
    durations=(2.0, 6.0),
    train_batch=4,
    train_epochs=1,
    batch_sizes=(2, 4),
    n_s=4,
    n_t=1,
    workers=1,
    min_s=0.5,
    max_s=1.5,
    warmup=2,
    budget_s=600.0,
)


class Run:
    """The report being built: checks (name -> passed, detail) and the measurements."""

    def __init__(self, plan: Plan, out: Path) -> None:
        self.plan, self.out, self.began = plan, out, time.monotonic()
        self.report: dict[str, Any] = {"plan": asdict(plan), "checks": {}, "throughput": []}

    def elapsed(self) -> float:
        return time.monotonic() - self.began

    def check(self, name: str, passed: bool, detail: Any) -> None:
        self.report["checks"][name] = {"passed": bool(passed), "detail": detail}
        print(f"[{self.elapsed():6.1f} s] {'ok  ' if passed else 'FAIL'} {name}: {detail}")

    def step(self, name: str, fn: Callable[[], None]) -> None:
        """Run one step; an error fails its check and the run goes on to the next."""
        try:
            fn()
        except Exception as err:
            self.check(name, False, f"{type(err).__name__}: {err}")
            traceback.print_exc()

    def write(self) -> tuple[Path, Path]:
        self.report["seconds"] = round(self.elapsed(), 1)
        self.report["passed"] = all(c["passed"] for c in self.report["checks"].values())
        self.out.mkdir(parents=True, exist_ok=True)
        json_path, md_path = self.out / "device_check.json", self.out / "device_check.md"
        json_path.write_text(json.dumps(self.report, indent=2, default=str) + "\n")
        md_path.write_text(markdown(self.report))
        return json_path, md_path


# --- environment, tests ----------------------------------------------------------------------
def environment(plan: Plan) -> dict[str, Any]:
    import pytorch_lightning as pl

    env = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "lightning": pl.__version__,
        "cpus": os.cpu_count(),
        "device": plan.device,
    }
    if plan.device == "cuda":
        props = torch.cuda.get_device_properties(0)
        env.update(
            gpu=props.name,
            capability=f"{props.major}.{props.minor}",
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            cudnn=torch.backends.cudnn.version(),
            bf16=torch.cuda.is_bf16_supported(),
        )
    return env


def run_tests(run: Run) -> None:
    """The tests that put the model on CUDA (all skipped on a CPU)."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "gpu"]
    cmd.append("tests/test_gpu_ready.py")  # its CPU cases run in make test
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    tail = (done.stdout + done.stderr).strip().splitlines()
    summary = tail[-1] if tail else "no output"
    run.report["tests"] = {"command": " ".join(cmd[2:]), "summary": summary, "rc": done.returncode}
    if done.returncode:
        print(done.stdout[-6000:], done.stderr[-3000:], sep="\n")
    run.check("tests", done.returncode == 0, summary)


# --- data and training -----------------------------------------------------------------------
def generate_data(plan: Plan, root: Path) -> None:
    width, height, fps = plan.video
    cmd = [
        *(sys.executable, "-m", "dkp.cli.synthetic", "--out", str(root)),
        *("--videos-per-class", *map(str, plan.videos_per_class)),
        *("--width", str(width), "--height", str(height), "--fps", str(fps)),
        *("--min-duration", str(plan.durations[0]), "--max-duration", str(plan.durations[1])),
        *("--workers", str(max(1, os.cpu_count() or 1)), "--multi-label-fraction", "0"),
    ]
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True, timeout=300)


def num_classes(root: Path) -> int:
    """The classes of an ActivityNet-layout dataset: its taxonomy's leaves."""
    taxonomy = json.loads((root / "activity_net.v1-3.min.json").read_text())["taxonomy"]
    parents = {node["parentId"] for node in taxonomy}
    return sum(node["nodeId"] not in parents for node in taxonomy)


def data_overrides(plan: Plan, root: Path, work: Path) -> list[str]:
    return [
        f"arch={plan.arch}",
        f"data.root={root}",
        "data.prepare=null",
        f"data.num_classes={num_classes(root)}",
        f"data.num_workers={plan.workers}",
        f"sampling.n_t={plan.n_t}",
        f"sampling.ratio={plan.n_s // plan.n_t}",
        f"paths.cache_dir={work / 'cache'}",
    ]


def train(run: Run, name: str, root: Path, work: Path, *extra: str) -> str:
    """``dkp-train experiment=name`` in bf16 on the plan's hardware; its last.ckpt."""
    plan, out = run.plan, work / name
    cmd = [
        *(sys.executable, "-m", "dkp.cli.train", f"experiment={name}", *plan.trainer),
        f"trainer.precision={plan.precision}",
        f"trainer.max_epochs={plan.train_epochs}",
        *("trainer.enable_progress_bar=false", "test=false", "logger=none"),
        "~callbacks.lr_monitor",
        f"data.batch_size={plan.train_batch}",
        *data_overrides(plan, root, work),
        f"hydra.run.dir={out}",
        *extra,
    ]
    began = time.monotonic()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - began
    if done.returncode:
        raise RuntimeError(f"dkp-train {name} exited {done.returncode}: {done.stderr[-2000:]}")
    results = json.loads((out / "results.json").read_text())
    ckpt = torch.load(results["last_checkpoint"], map_location="cpu", weights_only=True)
    steps = int(ckpt["global_step"])
    loss, val = results["metrics"].get("train/loss"), results["metrics"].get("val/mAP")
    weights = [v for v in ckpt["state_dict"].values() if v.is_floating_point()]
    finite = all(isinstance(v, float) and math.isfinite(v) for v in (loss, val))
    finite = finite and all(bool(torch.isfinite(v).all()) for v in weights)
    detail = {
        "steps": steps,
        "seconds": round(seconds, 1),
        "train_loss": loss,
        "val_mAP": val,
        "gflops": results["cost"]["gflops"],
    }
    run.report.setdefault("training", {})[name] = detail
    run.check(f"train {name} ({plan.arch}, {plan.precision})", finite and steps > 0, detail)
    return results["last_checkpoint"]


# --- checkpoints -----------------------------------------------------------------------------
def val_batch(module, root: Path, plan: Plan, work: Path):
    """The first validation batch, decoded the same way in every process (index seeds)."""
    from dkp.runtime.config import build_object, compose

    cfg = compose("eval", ["ckpt_path=x", *data_overrides(plan, root, work), "data.num_workers=0"])
    datamodule = build_object(cfg.data)
    datamodule.adapt_to(module)
    datamodule.setup("validate")
    return next(iter(datamodule.val_dataloader()))


def predict_on_cpu(ckpt: str, root: Path, plan: Plan, work: Path, out: Path) -> None:
    """(A process that sees no GPU) probabilities of ``ckpt`` on the first val batch."""
    from dkp.lightning import load_module

    module = load_module(ckpt)
    with torch.inference_mode():
        torch.save(module.video_probs(val_batch(module, root, plan, work)), out)


def checkpoint_round_trip(run: Run, ckpt: str, root: Path, work: Path) -> None:
    from lightning_fabric.utilities.apply_func import move_data_to_device

    from dkp.lightning import load_module

    plan = run.plan
    saved_on = next(iter(torch.load(ckpt, weights_only=True)["state_dict"].values())).device.type
    probs_file = work / "cpu_probs.pt"
    cmd = [sys.executable, str(Path(__file__)), "--predict-cpu", ckpt, str(root), str(work)]
    cmd += [str(probs_file)] + (["--cpu-dry-run"] if plan.device == "cpu" else [])
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True, timeout=300, env=env)
    on_cpu = torch.load(probs_file, weights_only=True)

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    module = load_module(ckpt, map_location=plan.device)
    batch = move_data_to_device(val_batch(module, root, plan, work), plan.device)
    with torch.inference_mode():
        here = module.video_probs(batch).float().cpu()
    gap = float((here - on_cpu).abs().max())
    detail = {"saved_on": saved_on, "videos": len(here), "max_abs_diff": gap}
    run.check("its checkpoint scores the same in a process without a GPU", gap < 1e-4, detail)

    state_file = work / "state.pt"
    torch.save(module.state_dict(), state_file)
    back = torch.load(state_file, map_location=plan.device, weights_only=True)
    on_host = torch.load(state_file, map_location="cpu", weights_only=True)
    same = all(torch.equal(back[k], v) for k, v in module.state_dict().items())
    same = same and all(torch.equal(on_host[k], v.cpu()) for k, v in module.state_dict().items())
    run.check(f"state saved on {plan.device} reads back equal (there and on the CPU)", same, {})


# --- throughput ------------------------------------------------------------------------------
def build_model(kind: str, plan: Plan, root: Path, work: Path, teacher_ckpt: str):
    """The module of ``kind`` at the plan's arch: random weights; DKP from the trained
    teacher, frozen as DKP trains by default."""
    from dkp.runtime.config import build_object, compose

    extra = [f"model.teacher_ckpt={teacher_ckpt}"] if kind == "dkp" else []
    cfg = compose("train", [f"experiment={kind}", *data_overrides(plan, root, work), *extra])
    return build_object(cfg.model).to(plan.device)


def frames_of(kind: str, plan: Plan) -> dict[str, int]:
    """Frames each stream reads per video: the teacher alone reads n_s frames at its size."""
    return {"teacher": {"teacher": plan.n_s}, "student": {"student": plan.n_s}}.get(
        kind, {"student": plan.n_s, "teacher": plan.n_t}
    )


def random_batch(module, kind: str, batch: int, plan: Plan, classes: int):
    """A batch as the data module gives it (uint8 frames), already on the device."""
    from dkp.data.batch import Batch

    device = plan.device
    target = torch.zeros(batch, classes, device=device)
    target[torch.arange(batch), torch.arange(batch) % classes] = 1.0
    out = Batch(
        target=target,
        duration=torch.full((batch,), 10.0, device=device),
        video_ids=[f"v{i}" for i in range(batch)],
    )
    for name, count in frames_of(kind, plan).items():
        size = module.input_sizes[name]
        h, w = (size, size) if isinstance(size, int) else size
        frames = torch.randint(0, 256, (batch, count, 3, h, w), dtype=torch.uint8, device=device)
        times = torch.linspace(0.0, 9.0, count, device=device).expand(batch, count).contiguous()
        setattr(out, f"{name}_frames", frames)
        setattr(out, f"{name}_times", times)
        setattr(out, f"{name}_mask", torch.ones(batch, count, dtype=torch.bool, device=device))
    return out


def decoded_batches(module, kind: str, batch: int, count: int, plan: Plan, root: Path, work: Path):
    """``count`` batches decoded by DataLoader workers from the generated videos (no frame
    cache: every video decoded again), each moved to the device as Lightning moves it."""
    import functools

    from lightning_fabric.utilities.apply_func import move_data_to_device
    from torch.utils.data import DataLoader, Subset

    from dkp.data.dataset import collate_clips
    from dkp.runtime.config import build_object, compose

    frames = frames_of(kind, plan)
    sampling = [f"sampling.networks=[{','.join(frames)}]"]
    if kind == "teacher":
        sampling.append(f"sampling.n_t={plan.n_s}")
    overrides = [*data_overrides(plan, root, work), *sampling, "data.reader.cache=null"]
    datamodule = build_object(compose("train", overrides).data)
    datamodule.adapt_to(module)
    datamodule.prepare_data()
    datamodule.setup("fit")
    dataset = datamodule.dataset("train")
    order = [i % len(dataset) for i in range(batch * count)]
    loader = DataLoader(
        Subset(dataset, order),
        batch_size=batch,
        num_workers=plan.workers,
        collate_fn=functools.partial(collate_clips, num_classes=datamodule.num_classes),
        pin_memory=plan.device == "cuda",
    )
    for item in loader:
        yield move_data_to_device(item, plan.device)


def sync(plan: Plan) -> None:
    if plan.device == "cuda":
        torch.cuda.synchronize()


def rate(step: Callable[[], int], plan: Plan, warmup: int, min_steps: int) -> tuple[float, int]:
    """Videos/s of ``step`` (which returns the videos it ran), after ``warmup`` steps."""
    for _ in range(warmup):
        step()
    sync(plan)
    began, videos, steps = time.perf_counter(), 0, 0
    while True:
        try:
            videos += step()
        except StopIteration:  # every batch decoded was timed: the rate over them
            if not steps:
                raise
            return videos / (time.perf_counter() - began), steps
        steps += 1
        sync(plan)
        spent = time.perf_counter() - began
        if (steps >= min_steps and spent >= plan.min_s) or spent >= plan.max_s:
            return videos / spent, steps


def measure(run: Run, module, kind: str, batch: int, mode: str, decode: bool, root: Path, work):
    """One throughput figure: ``mode`` (train or infer) of ``kind`` at ``batch``."""
    plan = run.plan
    row: dict[str, Any] = {"model": kind, "mode": mode, "batch": batch, "decoding": decode}
    if run.elapsed() > plan.budget_s:
        run.report["throughput"].append({**row, "status": "skipped: time budget"})
        return
    autocast = torch.autocast(plan.device, dtype=torch.bfloat16)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4) if mode == "train" else None
    if decode:
        source = decoded_batches(module, kind, batch, 200, plan, root, work)
    else:
        fixed = random_batch(module, kind, batch, plan, module.num_classes)

    def step() -> int:
        data = next(source) if decode else fixed
        if mode == "infer":
            with torch.inference_mode(), autocast:
                module.video_probs(data)
            return len(data)
        with autocast:
            loss = module.training_loss(data)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return len(data)

    module.train(mode == "train")
    if plan.device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        # Decoding: one warm-up batch starts the workers; its batches take seconds each.
        videos_s, steps = rate(step, plan, 1 if decode else plan.warmup, 2 if decode else 3)
        row.update(status="ok", videos_s=round(videos_s, 1), steps=steps)
        if plan.device == "cuda":
            row["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
    except torch.cuda.OutOfMemoryError:
        row["status"] = "out of memory"
    except StopIteration:
        row["status"] = "data ran out"
    finally:
        if decode:
            source.close()  # stops its workers
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        if plan.device == "cuda":
            torch.cuda.empty_cache()
    run.report["throughput"].append(row)
    print(f"[{run.elapsed():6.1f} s] {row}")


def throughput(run: Run, root: Path, work: Path, teacher_ckpt: str) -> None:
    plan = run.plan
    if plan.device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    else:  # as dkp-train does: the cores the DataLoader workers leave
        from dkp.runtime.threads import torch_threads

        torch.set_num_threads(torch_threads("auto", plan.workers) or 1)
    gflops: dict[str, float] = {}
    models = {}
    for kind in KINDS:
        models[kind] = build_model(kind, plan, root, work, teacher_ckpt)
        count = frames_of(kind, plan)
        cost = models[kind].cost_model().video(count.get("student", 0), count.get("teacher", 0))
        gflops[kind] = cost
    # What the GFLOPs ratio is about first: past the time budget, the rest is skipped.
    for decode in (False, True):
        for kind in KINDS:
            for batch in plan.batch_sizes:
                for mode in ("infer", "train"):
                    measure(run, models[kind], kind, batch, mode, decode, root, work)
        if not decode:
            gflops["dkp_cl"] = gflops["dkp"]
            channels_last = copy.deepcopy(models["dkp"]).to(memory_format=torch.channels_last)
            for mode in ("infer", "train"):
                measure(run, channels_last, "dkp_cl", plan.batch_sizes[-1], mode, False, root, work)
            del channels_last
    run.report["gflops"] = {k: round(v, 4) for k, v in gflops.items()}
    speedups = speed_ratios(run.report["throughput"])
    run.report["speedup_over_teacher"] = speedups
    expected = gflops["teacher"] / gflops["dkp"]
    key = f"infer/{plan.batch_sizes[-1]}/frames on device"
    measured = speedups.get(key)
    detail = {"gflops_ratio": round(expected, 2), "measured": measured, "at": key}
    tracks = measured is not None and measured >= TRACKS * expected
    if plan.device == "cpu":  # tiny CPU sizes are all overhead: shown, not judged
        detail["judged"] = False
        tracks = measured is not None
    run.check("DKP's speed-up over the teacher tracks its GFLOPs ratio", tracks, detail)


def speed_ratios(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Teacher-alone time over DKP time, per mode, batch and data source."""
    speed = {
        (r["model"], r["mode"], r["batch"], r["decoding"]): r["videos_s"]
        for r in rows
        if r.get("status") == "ok"
    }
    out = {}
    for (model, mode, batch, decoding), videos_s in speed.items():
        teacher = speed.get(("teacher", mode, batch, decoding))
        if model == "dkp" and teacher:
            source = "decoding" if decoding else "frames on device"
            out[f"{mode}/{batch}/{source}"] = round(videos_s / teacher, 2)
    return out


# --- the report ------------------------------------------------------------------------------
def markdown(report: dict[str, Any]) -> str:
    """The Markdown table of a report (docs/device_check.md when committed)."""
    env = report.get("environment", {})
    plan = report["plan"]
    lines = [
        "# Device check",
        "",
        f"`scripts/device_check.sh` on {env.get('gpu', env.get('device', '?'))}: torch "
        f"{env.get('torch')} (CUDA {env.get('torch_cuda')}), Lightning {env.get('lightning')}, "
        f"{env.get('cpus')} CPUs; arch={plan['arch']}, {plan['precision']}, "
        f"n_s={plan['n_s']}, n_t={plan['n_t']}; {report.get('seconds', '?')} s in all.",
        "",
        "| check | | detail |",
        "|---|---|---|",
    ]
    for name, c in report["checks"].items():
        detail = json.dumps(c["detail"]) if not isinstance(c["detail"], str) else c["detail"]
        lines.append(f"| {name} | {'pass' if c['passed'] else '**FAIL**'} | {detail} |")
    lines += [
        "",
        "Videos/s (bf16 autocast; training: AdamW steps, DKP's teacher frozen). Frames on "
        "device: uint8 frames already on the device; decoding: DataLoader workers decode "
        "the generated videos (no frame cache) in the loop.",
        "",
        "| model | GFLOPs/video | batch | inference | training | inference, decoding "
        "| training, decoding | peak GB (train) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = {(r["model"], r["mode"], r["batch"], r["decoding"]): r for r in report["throughput"]}
    gflops = report.get("gflops", {})

    def cell(key: tuple) -> str:
        r = rows.get(key)
        if r is None:
            return "-"
        return f"{r['videos_s']:.1f}" if r.get("status") == "ok" else r["status"]

    for model, label in LABELS.items():
        for batch in plan["batch_sizes"]:
            keys = [(model, m, batch, d) for d in (False, True) for m in ("infer", "train")]
            if not any(k in rows for k in keys):
                continue
            peak = rows.get((model, "train", batch, False), {}).get("peak_gb", "-")
            cells = " | ".join(cell(k) for k in keys)
            cost = f"{gflops[model]:.3g}" if model in gflops else "-"
            lines.append(f"| {label} | {cost} | {batch} | {cells} | {peak} |")
    if gflops.get("teacher") and gflops.get("dkp"):
        ratio = gflops["teacher"] / gflops["dkp"]
        lines += ["", f"GFLOPs ratio teacher/DKP: {ratio:.2f}x. Measured speed-up of DKP:"]
        lines += [f"- {k}: {v:.2f}x" for k, v in report.get("speedup_over_teacher", {}).items()]
    lines += ["", f"For scale: {REFERENCE}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(REPO / "outputs" / "device_check"))
    p.add_argument("--work", default=None, help="scratch directory (default: OUT/work)")
    p.add_argument("--cpu-dry-run", action="store_true", help="everything on the CPU, tiny")
    p.add_argument("--skip-tests", action="store_true")
    p.add_argument("--predict-cpu", nargs=4, metavar=("CKPT", "DATA", "WORK", "OUT"))
    args = p.parse_args(argv)
    plan = DRY if args.cpu_dry_run else GPU
    if args.predict_cpu:
        ckpt, data, work, out = args.predict_cpu
        predict_on_cpu(ckpt, Path(data), plan, Path(work), Path(out))
        return 0
    if plan.device == "cuda" and not torch.cuda.is_available():
        print(f"device_check: torch {torch.__version__} sees no CUDA device (--cpu-dry-run?)")
        return 2
    out = Path(args.out)
    work = Path(args.work) if args.work else out / "work"
    work.mkdir(parents=True, exist_ok=True)
    run = Run(plan, out)
    run.report["environment"] = environment(plan)
    root = work / "data"
    try:
        if not args.skip_tests:
            run.step("tests", lambda: run_tests(run))
        run.step("data", lambda: generate_data(plan, root))
        ckpts: dict[str, str] = {}
        run.step("train teacher", lambda: ckpts.update(teacher=train(run, "teacher", root, work)))
        if "teacher" in ckpts:
            dkp = f"model.teacher_ckpt={ckpts['teacher']}"
            run.step("train dkp", lambda: ckpts.update(dkp=train(run, "dkp", root, work, dkp)))
        if "dkp" in ckpts:
            run.step("checkpoint", lambda: checkpoint_round_trip(run, ckpts["dkp"], root, work))
        if "teacher" in ckpts:
            run.step("throughput", lambda: throughput(run, root, work, ckpts["teacher"]))
    finally:
        json_path, md_path = run.write()
    verdict = "passed" if run.report["passed"] else "FAILED"
    print(f"device_check: {verdict} in {run.elapsed():.0f} s")
    print(f"  {json_path}\n  {md_path}")
    return 0 if run.report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
