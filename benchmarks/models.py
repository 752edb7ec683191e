"""The networks alone (no decoding): videos/s at batch 1, 32 and 128, latency per video at
batch 1, for teacher-only, student-only, DKP, dynamic DKP and early exit, next to their GMACs.

As AdaFocusV2 and Uni-AdaFocus report throughput (videos/s on one GPU at batch 128): random
weights, random uint8 frames already at each network's input size, inference mode. Dynamic
DKP and early exit stop half the videos at their first checkpoint (a threshold between the
batch's two middle confidences; at batch 1, two videos run one after the other, one of each)
and really skip the rest of the work for them; their GMACs are the mean of what each video
ran. Teacher-only and student-only run their network on the n_s frames DKP's student sees.
The methods are timed side by side, interleaved, and the best of the repetitions is kept
(benchmarks/timing.py).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch
from hydra.utils import instantiate

from benchmarks.throughput import config, dkp_module
from benchmarks.timing import best, interleaved
from dkp.data.batch import Batch
from dkp.data.dataset import as_size
from dkp.models.early_exit.policy import ExitPolicy

#: frames per video at each scale: DKP's n_s and n_t (paper: 30.14 GFLOPs), early exit's
FRAMES = {"embedded": (16, 4, 8), "paper": (20, 5, 8)}
MODELS = ("teacher-only", "student-only", "DKP", "dynamic DKP", "early exit")


def _frames(batch: int, count: int, size: int | list[int], seed: int) -> torch.Tensor:
    height, width = as_size(size)
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, count, 3, height, width), generator=g, dtype=torch.uint8)


def _stream(batch: int, count: int, size: int | list[int], seed: int) -> dict[str, torch.Tensor]:
    duration = 60.0
    times = ((torch.arange(count) + 0.5) * duration / count).repeat(batch, 1)
    mask = torch.ones(batch, count, dtype=torch.bool)
    return {"frames": _frames(batch, count, size, seed), "times": times, "mask": mask}


def make_batch(batch: int, streams: dict[str, tuple[int, int | list[int]]], seed: int = 0) -> Batch:
    """``batch`` videos of 60 s with ``streams[name] = (frames, size)`` per sampled stream."""
    out = Batch(torch.zeros(batch, 1), torch.full((batch,), 60.0), [str(i) for i in range(batch)])
    for i, (name, (count, size)) in enumerate(streams.items()):
        for part, value in _stream(batch, count, size, seed + i).items():
            setattr(out, f"{name}_{part}", value)
    return out


def early_exit_module(arch: str):
    """An early-exit ResNet at ``arch`` (the teacher's backbone, 8 frames in 4 groups)."""
    cfg = config([f"arch={arch}", "experiment=early_exit"])
    return instantiate(cfg.model).eval()


def half_stop(first: torch.Tensor, checkpoints: int) -> ExitPolicy:
    """A policy that stops the surer half of the videos at checkpoint 1 (``first``: their
    probabilities there; a threshold between the two middle ones) and runs the rest to the
    last checkpoint."""
    sure = first.max(-1).values.sort().values
    middle = (sure[(len(sure) - 1) // 2] + sure[len(sure) // 2]) / 2
    return ExitPolicy.of([float(middle)] + [float("inf")] * (checkpoints - 2), checkpoints)


def scale_case(
    arch: str, batches: tuple[int, ...], reps: int, device: torch.device, warmup: bool = True
) -> list[dict]:
    """One row per model at scale ``arch``: GMACs per video, videos/s at each batch size
    (the best of ``reps`` interleaved runs, after an untimed one with ``warmup``)."""
    n_s, n_t, n_exit = FRAMES[arch]
    dkp, cfg = dkp_module(arch)
    dkp = dkp.eval().to(device)
    exits = early_exit_module(arch).to(device)
    sizes = {"student": cfg.arch.student.size, "teacher": cfg.arch.teacher.size}
    speed: dict[str, dict[int, float]] = {m: {} for m in MODELS}
    spent: dict[str, list[float]] = {}
    for batch in batches:
        runs, videos = _runs(dkp, exits, arch, sizes, batch, device)
        with torch.inference_mode():
            for name in ("dynamic DKP", "early exit"):  # what each video ran
                spent[name] = [g for out in runs[name]() for g in out.gflops.tolist()]
            t = interleaved({n: _synced(run, device) for n, run in runs.items()}, reps, warmup)
        for name in MODELS:
            speed[name][batch] = videos / best(t[name])
    cost = dkp.cost_model()
    gflops = {
        "teacher-only": n_s * cost.teacher_frame,
        "student-only": n_s * cost.student_frame,
        "DKP": cost.video(n_s, n_t),
        **{name: statistics.fmean(values) for name, values in spent.items()},
    }
    s, t = sizes["student"], sizes["teacher"]
    frames = {
        "teacher-only": f"{n_s} x {t}",
        "student-only": f"{n_s} x {s}",
        "DKP": f"{n_s} x {s} + {n_t} x {t}",
        "dynamic DKP": f"{n_s} x {s} + {n_t} x {t}, half stop after the student",
        "early exit": f"{n_exit} x {t}, half stop at 1 of {exits.num_checkpoints}",
    }
    largest = max(batches)
    base = speed["teacher-only"][largest]
    return [
        {
            "arch": arch,
            "device": device.type,
            "model": name,
            "frames": frames[name],
            "gflops": gflops[name],
            "videos_s": {str(b): v for b, v in speed[name].items()},
            "latency_ms": 1e3 / speed[name][1] if 1 in speed[name] else None,
            "largest_batch": largest,
            "gflops_s": gflops[name] * speed[name][largest],
            "x_teacher": speed[name][largest] / base,
            "gflops_ratio": gflops["teacher-only"] / gflops[name],
        }
        for name in MODELS
    ]


def _runs(
    dkp, exits, arch: str, sizes: dict, batch: int, device: torch.device
) -> tuple[dict[str, Callable[[], list]], int]:
    """Each model's forward passes on generated videos (made once, here), and how many
    videos they are: batches of ``batch``, and at batch 1 two videos one after the other,
    one that stops early and one that does not."""
    n_s, n_t, n_exit = FRAMES[arch]
    videos = max(batch, 2)
    s, t = (n_s, sizes["student"]), (n_s, sizes["teacher"])
    both = _to(make_batch(videos, {"student": s, "teacher": (n_t, sizes["teacher"])}), device)
    student = _to(make_batch(videos, {"student": s}, seed=7), device)
    teacher = _to(make_batch(videos, {"teacher": t}, seed=8), device)
    clip = _to(make_batch(videos, {"teacher": (n_exit, sizes["teacher"])}, seed=3), device)
    with torch.inference_mode():
        dynamic = half_stop(dkp.checkpoint_scores(both).probs[:, 0], dkp.num_checkpoints)
        early = half_stop(exits.checkpoint_scores(clip).probs[:, 0], exits.num_checkpoints)

    def parts(b: Batch) -> list[Batch]:
        return [b] if batch > 1 else [_video(b, i) for i in range(videos)]

    both_, student_, teacher_, clip_ = (parts(b) for b in (both, student, teacher, clip))
    runs = {
        "teacher-only": lambda: [dkp.net.teacher(b.teacher_frames) for b in teacher_],
        "student-only": lambda: [dkp.net.student(b.student_frames) for b in student_],
        "DKP": lambda: [dkp.net(b) for b in both_],
        "dynamic DKP": lambda: [dkp.infer(b, dynamic) for b in both_],
        "early exit": lambda: [exits.infer(b, early) for b in clip_],
    }
    return runs, videos


def _video(batch: Batch, i: int) -> Batch:
    """Video ``i`` of ``batch`` as a batch of its own."""
    values = {k: v[i : i + 1] if isinstance(v, torch.Tensor) else v for k, v in vars(batch).items()}
    values["video_ids"] = batch.video_ids[i : i + 1]
    return Batch(**values)


def _to(batch: Batch, device: torch.device) -> Batch:
    for name, value in vars(batch).items():
        if isinstance(value, torch.Tensor):
            setattr(batch, name, value.to(device))
    return batch


def _synced(run: Callable[[], object], device: torch.device) -> Callable[[], None]:
    """``run``, waiting for the device to finish (CUDA runs asynchronously)."""

    def call() -> None:
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return call


def models_case(reps: int, quick: bool) -> list[dict]:
    """Every scale on the CPU (paper scale at batch 1 only, its first run the warm-up: one
    batch of 128 videos of ResNet-50 on 20 frames takes minutes there), and, when there is
    one, on the GPU at batch 1, 32 and 128."""
    cpu = torch.device("cpu")
    rows = scale_case("embedded", (1, 32) if quick else (1, 32, 128), reps, cpu)
    rows += scale_case("paper", (1,), reps, cpu, warmup=False)
    if torch.cuda.is_available():
        gpu = torch.device("cuda")
        for arch in ("embedded", "paper"):
            rows += scale_case(arch, (1, 32, 128), max(reps, 3), gpu)
    return rows
