"""Streaming inference: a prediction whenever a live source has given enough frames.

What ``dkp-predict --stream SOURCE`` runs (sources: :class:`~dkp.data.streaming.LiveSource`).

* **DKP and a frame classifier**: a window of the last ``window`` seconds slides over the
  stream. A window gets the frame counts a video of that length gets in the checkpoint's
  sampling (``n_s`` student frames dense, ``n_t`` teacher frames sparse), taken at a steady
  interval as frames arrive; each network runs once on each frame it samples, and its
  features and logits are kept while the frame is in the window. Each new frame of the
  sparser stream (the teacher's) gives an update: the propagation block and ensemble (DKP)
  or the mean of the frame probabilities (a classifier) over the window, its times as
  fractions of the window (as a video's are of its duration).
* **Early exit**: the stream is cut into consecutive windows of ``window`` seconds, each
  sampled at the centres of ``num_frames`` equal segments, as evaluation samples a video.
  The route's steps (:mod:`dkp.models.early_exit.steps`) run as soon as the frame groups
  they read have arrived, and the window's prediction comes from the first checkpoint
  confident enough (``threshold``, else the checkpoint's thresholds); the rest of the window
  is not computed at all.

Each update says the GMACs spent since the stream began (counted as everywhere in dkp: each
backbone frame, each fusion at its frame counts, each route step) and its latency: the
seconds from the arrival of the frame that completed it to the prediction.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import torch

from dkp.data.dataset import as_size
from dkp.data.streaming import LiveFrame, LiveSource
from dkp.evaluation.predictions import top_classes
from dkp.lightning import DKPModule, EarlyExitModule, FrameClassifierModule, load_module
from dkp.lightning.base import VideoModule
from dkp.models.dkp.net import DKPFusion, normalized_times
from dkp.models.early_exit.policy import ExitPolicy
from dkp.models.early_exit.steps import EarlyExitSteps
from dkp.models.frame_net import FrameNet


@dataclass
class StreamUpdate:
    """One prediction of a stream: when (stream seconds of the newest frame it used), the
    top classes, the window it covers, the frames it used per stream (their times), the
    GMACs spent since the stream began, its latency in seconds and, for early exit, the
    checkpoint (from 1) that answered."""

    time: float
    top: list[tuple[str, float]]
    window: tuple[float, float]
    frame_times: dict[str, list[float]]
    gflops: float
    latency: float
    checkpoint: int | None = None
    probs: torch.Tensor | None = field(default=None, repr=False)

    def line(self, checkpoints: int | None = None) -> str:
        """The update as one printed line."""
        top = ", ".join(f"{name} {p:.3f}" for name, p in self.top)
        frames = " + ".join(f"{len(t)} {name}" for name, t in self.frame_times.items())
        plural = "s" if sum(len(t) for t in self.frame_times.values()) > 1 else ""
        where = f" | exit {self.checkpoint}/{checkpoints}" if self.checkpoint else ""
        return (
            f"[{self.time:9.2f} s] {top} | {frames} frame{plural}{where} | "
            f"{self.gflops:.4f} GFLOPs so far | {1e3 * self.latency:.1f} ms"
        )


class _Sampled:
    """A stream's frames in the window: times and what its network made of each."""

    def __init__(self, net: FrameNet, size: tuple[int, int], count: int, window: float) -> None:
        self.net, self.size, self.count = net, size, count
        self.interval = window / count
        self.due = 0.0
        self.times: deque[float] = deque(maxlen=count)
        self.features: deque[torch.Tensor] = deque(maxlen=count)
        self.logits: deque[torch.Tensor] = deque(maxlen=count)

    def offer(self, frame: LiveFrame) -> bool:
        """Take ``frame`` if this stream's next sample is due; True if it was taken."""
        if frame.time + 1e-6 < self.due:
            return False
        self.due = max(self.due + self.interval, frame.time + 0.5 * self.interval)
        pixels = torch.from_numpy(frame.rgb(*self.size)).permute(2, 0, 1)
        out = self.net(pixels[None, None])
        self.times.append(frame.time)
        self.features.append(out.features[0, 0])
        self.logits.append(out.logits[0, 0])
        return True


class WindowPredictor:
    """DKP or a frame classifier over a sliding window (see the module docstring)."""

    def __init__(self, module: VideoModule, window: float, overrides: dict | None) -> None:
        sampling = module.sampling(overrides)
        sizes, cost = module.input_sizes, module.cost_model()
        self.module, self.window, self.spent = module, window, 0.0
        self.names = list(module.networks)
        if isinstance(module, FrameClassifierModule):
            nets = {module.role: module.net}
        else:
            nets = {"student": module.net.student, "teacher": module.net.teacher}
        self.frame_cost = {"student": cost.student_frame, "teacher": cost.teacher_frame}
        self.cost = cost
        self.streams = {
            name: _Sampled(
                nets[name],
                as_size(sizes[name]),
                getattr(sampling, name).count(window),
                window,
            )
            for name in self.names
        }
        self.trigger = "teacher" if "teacher" in self.streams else self.names[0]
        self.fusion = DKPFusion(module.net).eval() if isinstance(module, DKPModule) else None

    def push(self, frame: LiveFrame) -> StreamUpdate | None:
        """Sample ``frame`` where a stream is due; an update if the trigger stream took it."""
        took = {name: s.offer(frame) for name, s in self.streams.items()}
        for name, taken in took.items():
            self.spent += self.frame_cost[name] if taken else 0.0
        if not took[self.trigger] or any(not s.times for s in self.streams.values()):
            return None
        newest = max(s.times[-1] for s in self.streams.values())
        start = newest + 0.5 * self.streams[self.names[0]].interval - self.window
        if self.fusion is None:
            (stream,) = self.streams.values()
            probs = torch.stack(list(stream.logits)).float().softmax(-1).mean(0)
        else:
            s, t = self.streams["student"], self.streams["teacher"]
            span = torch.tensor([self.window])

            def fractions(times: deque[float]) -> torch.Tensor:
                return normalized_times(torch.tensor([list(times)]) - start, span)

            probs, _ = self.fusion(
                torch.stack(list(s.features))[None],
                fractions(s.times),
                torch.stack(list(t.features))[None],
                torch.stack(list(t.logits))[None],
                fractions(t.times),
            )
            probs = probs[0]
            self.spent += self.cost.fusion(len(s.times), len(t.times))
        return StreamUpdate(
            time=frame.time,
            top=[],
            window=(start, start + self.window),
            frame_times={name: list(s.times) for name, s in self.streams.items()},
            gflops=self.spent,
            latency=time.perf_counter() - frame.arrived,
            probs=probs,
        )


class ExitPredictor:
    """Early exit over consecutive windows, stopping at the first confident checkpoint."""

    def __init__(self, module: EarlyExitModule, window: float, threshold: float | None) -> None:
        self.module, self.window, self.spent = module, window, 0.0
        self.net = module.net
        self.steps = EarlyExitSteps(self.net).eval()
        self.size = as_size(module.hparams.input_size)
        count = self.net.num_checkpoints
        self.policy = module.policy if threshold is None else ExitPolicy.of(threshold, count)
        route = list(module.route.gflops)  # GMACs up to each checkpoint
        self.step_cost = [b - a for a, b in zip([0.0, *route[:-1]], route, strict=True)]
        self.index = -1
        self._next_window(0)

    def _next_window(self, index: int) -> None:
        n = self.net.grid.num_frames
        self.index, self.start = index, index * self.window
        self.times = [self.start + (i + 0.5) * self.window / n for i in range(n)]
        self.frames: dict[int, torch.Tensor] = {}
        self.taken: dict[int, float] = {}  # the stream time of the frame in each slot
        self.step, self.carried, self.done = 0, (), False

    def push(self, frame: LiveFrame) -> StreamUpdate | None:
        """Keep ``frame`` where the window needs it; run the steps whose groups are complete;
        an update when a checkpoint stops the window."""
        while frame.time >= self.start + self.window - 1e-6:
            self._next_window(self.index + 1)
        if self.done:
            return None
        due = [i for i, t in enumerate(self.times) if t <= frame.time + 1e-6]
        wanted = [i for i in due if i not in self.frames]
        if not wanted:
            return None
        pixels = torch.from_numpy(frame.rgb(*self.size)).permute(2, 0, 1)
        for i in wanted:  # a slot a gap in the stream skipped gets this frame too
            self.frames[i] = pixels
            self.taken[i] = frame.time
        grid, plans = self.net.grid, self.steps.plans
        while self.step < len(plans):
            plan = plans[self.step]
            needed = [i for g in plan.groups for i in grid.group_frames(g)]
            if any(i not in self.frames for i in needed):
                return None
            group_frames = [
                torch.stack([self.frames[i] for i in grid.group_frames(g)])[None]
                for g in plan.groups
            ]
            out = self.steps.steps[self.step](*group_frames, *self.carried)
            self.spent += self.step_cost[self.step]
            probs = out[0].float().softmax(-1)
            if bool(self.policy.stops(self.step, probs)[0]):
                self.done = True
                read = [g for p in plans[: self.step + 1] for g in p.groups]
                seen = sorted(i for g in read for i in grid.group_frames(g))
                return StreamUpdate(
                    time=frame.time,
                    top=[],
                    window=(self.start, self.start + self.window),
                    frame_times={self.module.role: [self.taken[i] for i in seen]},
                    gflops=self.spent,
                    latency=time.perf_counter() - frame.arrived,
                    checkpoint=self.step + 1,
                    probs=probs[0],
                )
            self.carried, self.step = tuple(out[1:]), self.step + 1
        return None


def predictor(
    module: VideoModule,
    window: float = 8.0,
    sampling: dict[str, Any] | None = None,
    threshold: float | None = None,
) -> Callable[[LiveFrame], StreamUpdate | None]:
    """The per-frame step of streaming inference for ``module`` (see the module docstring)."""
    if not window > 0:
        raise ValueError(f"--window: must be a positive number of seconds, got {window!r}")
    if isinstance(module, EarlyExitModule):
        return ExitPredictor(module, window, threshold).push
    if threshold is not None:
        raise ValueError("--threshold: only early-exit checkpoints stop early")
    if isinstance(module, (DKPModule, FrameClassifierModule)):
        return WindowPredictor(module, window, sampling).push
    raise ValueError(f"--stream: no streaming for a {module.kind!r} model")


@torch.inference_mode()
def stream_updates(
    module: VideoModule,
    frames: Iterable[LiveFrame],
    window: float = 8.0,
    sampling: dict[str, Any] | None = None,
    threshold: float | None = None,
    top_k: int = 5,
) -> Iterator[StreamUpdate]:
    """Predictions for ``frames`` as they arrive (see the module docstring)."""
    module.eval()
    step = predictor(module, window, sampling, threshold)
    names = module.class_names()
    for frame in frames:
        update = step(frame)
        if update is not None:
            update.top = top_classes(update.probs, names, top_k)
            yield update


def stream(
    ckpt: str | Path,
    source: str,
    window: float = 8.0,
    sampling: dict[str, Any] | None = None,
    threshold: float | None = None,
    top_k: int = 5,
    realtime: bool = False,
    format: str | None = None,
    options: dict[str, str] | None = None,
    threads: int = 1,
    max_updates: int | None = None,
    out: TextIO | None = None,
) -> int:
    """Print a prediction of the live ``source`` to ``out`` whenever one is ready (see the
    module docstring); ``max_updates`` stops after that many. Returns 0; a source that cannot
    be opened or read raises :class:`~dkp.data.decoding.VideoDecodeError`."""
    out = out or sys.stdout
    module = load_module(ckpt, field="--ckpt")
    overrides = {k: v for k, v in (sampling or {}).items() if v is not None}
    live = LiveSource(source, format, options, realtime, threads)
    checkpoints = module.num_checkpoints if isinstance(module, EarlyExitModule) else None
    updates = stream_updates(module, live.frames(), window, overrides, threshold, top_k)
    try:
        for count, update in enumerate(updates, start=1):
            print(update.line(checkpoints), file=out, flush=True)
            if max_updates is not None and count >= max_updates:
                break
    finally:
        updates.close()  # closes the source
    return 0
