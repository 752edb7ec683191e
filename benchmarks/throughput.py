"""Training and inference throughput: data loading vs training step, DKP vs the teacher alone,
and the CPU execution options (inference mode, channels-last, torch.compile)."""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict
from pytorch_lightning.profilers import SimpleProfiler
from typing_extensions import override

from benchmarks.decoding import uniform_times
from benchmarks.timing import best, interleaved, ratio
from dkp.data.batch import Batch
from dkp.data.dataset import ClipSample, collate_clips
from dkp.data.decoding import FrameRequest, PyAVReader
from dkp.data.decoding.parallel_indexing import index_videos
from dkp.evaluation.cost import CostModel, frame_gmacs
from dkp.runtime.config import CONFIG_DIR, build_object
from dkp.runtime.threads import set_torch_threads, torch_threads
from dkp.tasks.train import build

ROOT = Path(__file__).resolve().parent.parent


def config(overrides: list[str]) -> DictConfig:
    """``conf/train.yaml`` composed as ``dkp-train`` would, with ``overrides``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = cfg.paths.log_dir = str(ROOT / ".bench_cache")
    return cfg


def dkp_module(arch: str):
    """A DKP module with random weights at ``arch`` (embedded or paper); as dynamic DKP, its
    student is one checkpoint (what docs/benchmarks.md timed: half the videos stop there)."""
    overrides = ["model=dkp", "model.teacher_ckpt=null", "model.freeze_teacher=false"]
    cfg = config([f"arch={arch}", *overrides, "model.exit_student_steps=1"])
    return build_object(cfg.model), cfg


def _epochs(loader):
    """Batches of ``loader`` over successive epochs, each reshuffled and resampled as in fit."""
    for epoch in itertools.count():
        loader.sampler.set_epoch(epoch)
        yield from loader


def _rate(stream, batches: int) -> tuple[float, list]:
    """Batches/s of the next ``batches`` of ``stream``, and the batches."""
    began = time.perf_counter()
    got = [next(stream) for _ in range(batches)]
    return batches / (time.perf_counter() - began), got


def data_vs_train(batches: int, reps: int) -> dict:
    """Batches/s of the configured DataModule alone vs DKP training steps/s (embedded).

    The loader's rate is taken in a run's first epoch (worker start-up included): in a
    dataset's first run, after the packet indexing that ``prepare_data`` does before a fit
    (timed), and in a later run (indexes stored); then over later epochs, side by side with
    training steps on the batches it gave."""
    with tempfile.TemporaryDirectory() as cache:
        cfg = config(
            [
                "model=dkp",
                "model.teacher_ckpt=null",
                "model.freeze_teacher=false",
                f"data.root={ROOT / 'data' / 'synthetic'}",
                f"paths.cache_dir={cache}",
            ]
        )
        module = build_object(cfg.model)

        def fresh_loader():
            datamodule = build_object(cfg.data)
            datamodule.adapt_to(module)
            datamodule.prepare_data()
            datamodule.setup("fit")
            return datamodule, datamodule.train_dataloader()

        first, first_loader = fresh_loader()
        paths = [r.path for name in ("train", "val") for r in first.records(name).records]
        indexing = index_videos(first.reader, paths, first.num_workers)  # as a fit's prepare_data
        first_run, _ = _rate(_epochs(first_loader), batches)
        del first_loader  # stops its workers
        datamodule, loader = fresh_loader()
        stream = _epochs(loader)
        later_run, held = _rate(stream, batches)
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=1e-3)

    def load() -> None:
        for _ in range(batches):
            next(stream)

    def train() -> None:
        module.train()
        for batch in held:
            loss = module.training_loss(batch)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    threads = torch_threads(cfg.torch_threads, datamodule.num_workers) or torch.get_num_threads()
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # as dkp-train runs
    try:
        t = interleaved({"data": load, "train": train}, reps)
    finally:
        torch.set_num_threads(before)
    # Workers refill their prefetch queue while the other method runs, so that many batches of
    # each timed stretch were ready before it began: only the rest were loaded in it.
    ready = (loader.prefetch_factor or 0) * loader.num_workers
    return {
        "workers": datamodule.num_workers,
        "torch_threads": threads,
        "batch_size": datamodule.batch_size,
        "indexing_s": indexing.seconds,
        "indexed_videos": indexing.built,
        "data_batches_s_first_run": first_run,
        "data_batches_s_first": later_run,
        "data_batches_s": (batches - ready) / best(t["data"]),
        "train_steps_s": batches / best(t["train"]),
        "data_over_train": (batches - ready) / batches * ratio(t, "train", "data"),
    }


class _EpochClock(pl.Callback):
    """Wall time of each training epoch."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    @override
    def on_train_epoch_start(self, trainer, module) -> None:
        self._began = time.perf_counter()

    @override
    def on_train_epoch_end(self, trainer, module) -> None:
        self.seconds.append(time.perf_counter() - self._began)


def fit_rate(epochs: int = 2, overrides: tuple[str, ...] = ()) -> dict:
    """A real ``dkp-train experiment=dkp`` fit on the embedded data (no validation): steps/s
    of each epoch and the share of the last one the loop spent waiting for a batch."""
    with tempfile.TemporaryDirectory() as out:
        cfg = config(
            [
                "experiment=dkp",
                "model.teacher_ckpt=null",
                "model.freeze_teacher=false",
                f"data.root={ROOT / 'data' / 'synthetic'}",
                f"paths.cache_dir={out}",
                f"trainer.max_epochs={epochs}",
                "trainer.limit_val_batches=0",
                "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false",
                "logger=none",
                "~callbacks",
                *overrides,
            ]
        )
        with open_dict(cfg):
            cfg.paths.output_dir = out
        pl.seed_everything(cfg.seed)
        datamodule, module, trainer = build(cfg)
        clock, profiler = _EpochClock(), SimpleProfiler()
        trainer.callbacks.append(clock)
        trainer.profiler = profiler
        before = torch.get_num_threads()
        try:
            set_torch_threads(cfg.torch_threads, trainer, datamodule.num_workers)
            threads = torch.get_num_threads()
            trainer.fit(module, datamodule=datamodule)
        finally:
            torch.set_num_threads(before)
    steps = trainer.num_training_batches
    waits = profiler.recorded_durations["[_TrainingEpochLoop].train_dataloader_next"]
    return {
        "torch_threads": threads,
        "steps_s": [steps / s for s in clock.seconds],
        "data_wait_share": sum(waits[-steps:]) / clock.seconds[-1],
    }


def _requests(n_s: int, s_size: int, n_t: int, t_size: int, duration: float):
    return [
        FrameRequest(uniform_times(duration, n_s), s_size, s_size),
        FrameRequest(uniform_times(duration, n_t), t_size, t_size),
    ]


def _batch(requests: list[FrameRequest], frames, names: tuple[str, ...], duration) -> Batch:
    """One video's batch, as the data module collates it."""
    sample = ClipSample("v", (0,), duration)
    for name, request, clip in zip(names, requests, frames, strict=True):
        setattr(sample, f"{name}_frames", clip)
        setattr(sample, f"{name}_times", np.asarray(request.times, np.float32))
    return collate_clips([sample], num_classes=1)


def inference(arch: str, videos: list[Path], n_s: int, n_t: int, reps: int) -> dict:
    """Videos/s of DKP (n_s student + n_t teacher frames) vs the teacher alone on n_s frames,
    decoding included and excluded, next to the GFLOPs ratio."""
    module, cfg = dkp_module(arch)
    module.eval()
    net = module.net
    s_size, t_size = cfg.arch.student.size, cfg.arch.teacher.size
    reader = PyAVReader(skip_nonref=True)
    durations = [reader.probe(v).duration for v in videos]

    def decode(dkp: bool) -> list[Batch]:
        out = []
        for path, d in zip(videos, durations, strict=True):
            if dkp:
                requests, names = _requests(n_s, s_size, n_t, t_size, d), ("student", "teacher")
            else:  # the teacher alone reads n_s frames at its own size
                requests, names = _requests(1, 8, n_s, t_size, d)[1:], ("teacher",)
            out.append(_batch(requests, reader.read(path, requests), names, d))
        return out

    dkp_batches, teacher_batches = decode(True), decode(False)

    @torch.inference_mode()
    def run_dkp(batches) -> None:
        for b in batches:
            net(b)

    @torch.inference_mode()
    def run_teacher(batches) -> None:
        for b in batches:
            net.teacher(b.teacher_frames, b.teacher_mask)

    t = interleaved(
        {
            "dkp": lambda: run_dkp(dkp_batches),
            "teacher": lambda: run_teacher(teacher_batches),
            "dkp_decode": lambda: run_dkp(decode(True)),
            "teacher_decode": lambda: run_teacher(decode(False)),
        },
        reps,
    )
    dkp_cost = module.cost_model().video(n_s, n_t)
    teacher_cost = CostModel(teacher_frame=frame_gmacs(net.teacher, t_size)).video(0, n_s)
    n = len(videos)
    return {
        "arch": arch,
        "n_s": n_s,
        "n_t": n_t,
        "gflops_dkp": dkp_cost,
        "gflops_teacher": teacher_cost,
        "gflops_ratio": teacher_cost / dkp_cost,
        "videos_s_dkp": n / best(t["dkp"]),
        "videos_s_teacher": n / best(t["teacher"]),
        "videos_s_dkp_decode": n / best(t["dkp_decode"]),
        "videos_s_teacher_decode": n / best(t["teacher_decode"]),
        "speedup": ratio(t, "teacher", "dkp"),
        "speedup_decode": ratio(t, "teacher_decode", "dkp_decode"),
    }


def execution_options(arch: str, video: Path, n_s: int, n_t: int, reps: int, compile_: bool):
    """DKP forward under no_grad vs inference_mode, channels-last weights, torch.compile."""
    module, cfg = dkp_module(arch)
    module.eval()
    net = module.net
    duration = PyAVReader().probe(video).duration
    sizes = cfg.arch.student.size, cfg.arch.teacher.size
    requests = _requests(n_s, sizes[0], n_t, sizes[1], duration)
    batch = _batch(requests, PyAVReader().read(video, requests), ("student", "teacher"), duration)
    channels_last = dkp_module(arch)[0].eval().net
    channels_last.load_state_dict(net.state_dict())
    channels_last.to(memory_format=torch.channels_last)

    def under(mode, model):
        def run() -> None:
            with mode():
                model(batch)

        return run

    methods = {
        "no_grad": under(torch.no_grad, net),
        "inference_mode": under(torch.inference_mode, net),
        "channels_last": under(torch.inference_mode, channels_last),
    }
    row = {"arch": arch}
    if compile_:
        compiled = torch.compile(net)
        start = time.perf_counter()
        under(torch.inference_mode, compiled)()
        row["compile_s"] = time.perf_counter() - start
        methods["compile"] = under(torch.inference_mode, compiled)
    t = interleaved(methods, reps, warmup=True)
    row["forward_ms"] = 1e3 * best(t["no_grad"])
    for name in methods:
        if name != "no_grad":
            row[f"x_{name}"] = ratio(t, "no_grad", name)
    return row
