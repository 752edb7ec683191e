"""Export: a checkpoint's networks as TorchScript and ONNX files, checked against PyTorch.

What a checkpoint gives depends on its kind (every file takes uint8 RGB frames
``(B, N, 3, H, W)`` at the network's input size, batch and frame axes free):

* a frame classifier: ``<role>`` (``teacher`` or ``student``): frames to per-frame
  features and logits;
* DKP: ``student`` and ``teacher`` as above, and ``fusion``, the propagation block,
  propagated classifier and dynamic ensemble (:class:`~dkp.models.dkp.net.DKPFusion`):
  both networks' features, the teacher's logits and every frame's time as a fraction of the
  video to video and per-frame probabilities;
* early exit: ``early_exit_step<k>`` for each checkpoint ``k`` of the route
  (:mod:`dkp.models.early_exit.steps`): the frames of the groups the step reads first and
  the state the previous step returned, to checkpoint ``k``'s logits and the next step's
  state, so a runtime stops a video between steps.

Each is written as ``<name>.pt`` (``torch.jit.trace``) and ``<name>.onnx`` (opset 17 or
later), next to ``manifest.json`` (classes, input sizes, each file's inputs and outputs, the
early-exit steps' frames, thresholds and GMACs). Every file is run on generated inputs of two
batch sizes and two frame counts and its largest difference to PyTorch is reported.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from dkp.data.dataset import as_size
from dkp.lightning import DKPModule, EarlyExitModule, FrameClassifierModule, load_module
from dkp.lightning.base import VideoModule
from dkp.models.dkp.net import DKPFusion
from dkp.models.early_exit.steps import EarlyExitSteps
from dkp.models.frame_net import FrameLogits
from dkp.runtime.atomic import write_json

FORMATS = ("torchscript", "onnx")
SUFFIX = {"torchscript": ".pt", "onnx": ".onnx"}
MIN_OPSET = 17
#: (batch size, frame count) of the inputs every exported file is checked on.
CHECK_CASES = ((1, 3), (3, 5))


class ExportError(RuntimeError):
    """Exported files that differ from PyTorch by more than the tolerance."""


@dataclass
class Target:
    """One network to export: a module on tensors, how to make its inputs for a batch size and
    a frame count (an early-exit step's state comes from the steps before it), the names of
    its inputs and outputs and their free axes."""

    name: str
    module: nn.Module
    inputs: Callable[[int, int], tuple[Tensor, ...]]
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]

    def __post_init__(self) -> None:
        # eval mode for the whole tree: the ONNX exporter restores the wrapper's own mode
        # to every submodule afterwards, and a fresh wrapper starts in training mode
        self.module.eval()


@dataclass
class ExportReport:
    """The files written and each network's largest difference to PyTorch per format."""

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    max_error: dict[str, dict[str, float]] = field(default_factory=dict)


def _frames(batch: int, count: int, size: Sequence[int] | int, seed: int) -> Tensor:
    height, width = as_size(size)
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, count, 3, height, width), generator=g, dtype=torch.uint8)


def _times(batch: int, count: int, seed: int) -> Tensor:
    """Sorted fractions of a video in (0, 1): segment centres with jitter."""
    g = torch.Generator().manual_seed(seed)
    jitter = 0.5 + 0.4 * (torch.rand(batch, count, generator=g) - 0.5)
    return (torch.arange(count) + jitter) / count


def _per_frame(name: str) -> dict[str, dict[int, str]]:
    return {name: {0: "batch", 1: "frames"}}


def frame_target(name: str, module: FrameLogits, size: Sequence[int] | int) -> Target:
    """A frame network: ``frames`` to ``features`` and ``logits``."""
    axes = {**_per_frame("frames"), **_per_frame("features"), **_per_frame("logits")}
    return Target(
        name,
        module,
        lambda b, n: (_frames(b, n, size, seed=b * 100 + n),),
        ["frames"],
        ["features", "logits"],
        axes,
    )


def fusion_target(module: DKPModule) -> Target:
    """DKP's fusion on ``n`` student and ``n // 2 + 1`` teacher frames."""
    net = module.net
    classes = net.student.num_classes

    def inputs(b: int, n: int) -> tuple[Tensor, ...]:
        n_t = n // 2 + 1
        g = torch.Generator().manual_seed(b * 100 + n)
        return (
            torch.randn(b, n, net.student.feature_dim, generator=g),
            _times(b, n, seed=b + n),
            torch.randn(b, n_t, net.teacher.feature_dim, generator=g),
            torch.randn(b, n_t, classes, generator=g),
            _times(b, n_t, seed=b + n + 1),
        )

    student = {0: "batch", 1: "student_frames"}
    teacher = {0: "batch", 1: "teacher_frames"}
    axes = {
        "student_features": student,
        "student_times": student,
        "teacher_features": teacher,
        "teacher_logits": teacher,
        "teacher_times": teacher,
        "video_probs": {0: "batch"},
        "frame_probs": student,
    }
    names, outputs = list(axes)[:5], ["video_probs", "frame_probs"]
    return Target("fusion", DKPFusion(net), inputs, names, outputs, axes)


def step_targets(module: EarlyExitModule) -> list[Target]:
    """The early-exit steps; a step's example state is what the steps before it return on the
    same generated frames (the frame count is the grid's)."""
    steps = EarlyExitSteps(module.net)
    size = module.hparams.input_size
    cache: dict[int, list[tuple[Tensor, ...]]] = {}

    @torch.no_grad()
    def chain(b: int) -> list[tuple[Tensor, ...]]:
        if b not in cache:
            frames = _frames(b, module.net.grid.num_frames, size, seed=b)
            carried: tuple[Tensor, ...] = ()
            cache[b] = []
            for plan, step in zip(steps.plans, steps.steps, strict=True):
                args = (*steps.group_frames(frames, plan), *carried)
                cache[b].append(args)
                carried = tuple(step(*args)[1:])
        return cache[b]

    targets = []
    for k, (plan, step) in enumerate(zip(steps.plans, steps.steps, strict=True)):
        names = [*plan.input_names, *plan.output_names]
        axes = {
            name: {0: "batch" if name.startswith(("frames", "exit", "logits")) else f"{name}_rows"}
            for name in names
        }
        targets.append(
            Target(
                f"early_exit_step{k}",
                step,
                lambda b, _n, k=k: chain(b)[k],
                plan.input_names,
                plan.output_names,
                axes,
            )
        )
    return targets


def targets_of(module: VideoModule) -> list[Target]:
    """What :func:`export` writes for ``module`` (see the module docstring)."""
    if isinstance(module, FrameClassifierModule):
        return [frame_target(module.role, FrameLogits(module.net), module.hparams.input_size)]
    if isinstance(module, DKPModule):
        sizes = module.input_sizes
        return [
            frame_target("student", FrameLogits(module.net.student), sizes["student"]),
            frame_target("teacher", FrameLogits(module.net.teacher), sizes["teacher"]),
            fusion_target(module),
        ]
    if isinstance(module, EarlyExitModule):
        return step_targets(module)
    raise ValueError(f"--ckpt: no export for a module of kind {module.kind!r}")


def write_torchscript(target: Target, path: Path) -> Path:
    """``target`` traced with ``torch.jit.trace`` and saved."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(target.module, target.inputs(*CHECK_CASES[-1]), check_trace=False)
        torch.jit.save(traced, str(path))  # deprecated upstream in favour of torch.export
    return path


def write_onnx(target: Target, path: Path, opset: int) -> Path:
    """``target`` exported with ``torch.onnx.export`` (TorchScript-based exporter)."""
    _require("onnx", "writing ONNX")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            target.module,
            target.inputs(*CHECK_CASES[-1]),
            str(path),
            dynamo=False,
            opset_version=opset,
            input_names=target.input_names,
            output_names=target.output_names,
            dynamic_axes=target.dynamic_axes,
        )
    return path


def _require(package: str, what: str) -> Any:
    try:
        return __import__(package)
    except ImportError as err:
        message = f"{what} needs the {package!r} package: pip install 'dkp[export]'"
        raise ImportError(message) from err


def runner(path: Path, input_names: Sequence[str] = ()) -> Callable[..., list[Tensor]]:
    """A callable that runs an exported file (``.pt`` or ``.onnx``) on tensors, in order.
    Given the ``input_names`` they stand for, an ONNX graph gets the ones it reads: the
    exporter drops an input no output depends on (the online shift of a state too thin to
    give 1/shift_div of its channels, for instance)."""
    if path.suffix == ".pt":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            loaded = torch.jit.load(str(path))

        def run_script(*inputs: Tensor) -> list[Tensor]:
            # plain execution: the profiling executor re-optimises the graph for every new
            # input shape, which costs more than these few runs
            with torch.no_grad(), torch.jit.optimized_execution(False):
                out = loaded(*inputs)
            return list(out) if isinstance(out, (tuple, list)) else [out]

        return run_script
    ort = _require("onnxruntime", "running ONNX")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    wanted = [i.name for i in session.get_inputs()]

    def run_onnx(*inputs: Tensor) -> list[Tensor]:
        given = dict(zip(input_names or wanted, inputs, strict=True))
        feed = {name: given[name].numpy() for name in wanted}
        return [torch.from_numpy(o) for o in session.run(None, feed)]

    return run_onnx


def max_error(target: Target, run: Callable[..., list[Tensor]]) -> float:
    """Largest difference between ``run`` and PyTorch over :data:`CHECK_CASES`, relative to
    an output's largest magnitude where that exceeds 1 (absolute for probabilities; the
    state an early-exit step carries can reach hundreds)."""
    worst = 0.0
    for batch, count in CHECK_CASES:
        inputs = target.inputs(batch, count)
        with torch.no_grad():
            expected = target.module(*inputs)
        got = run(*inputs)
        if len(got) != len(expected):
            return float("inf")
        for e, g in zip(expected, got, strict=True):
            if e.shape != g.shape:
                return float("inf")
            if e.numel():
                scale = max(1.0, float(e.abs().max()))
                worst = max(worst, float((e.float() - g.float()).abs().max()) / scale)
    return worst


def manifest(module: VideoModule, targets: list[Target], report: ExportReport) -> dict:
    """What a runtime needs besides the files: classes, sizes, inputs/outputs, the steps."""
    models = {}
    for t in targets:
        entry: dict[str, Any] = {"inputs": t.input_names, "outputs": t.output_names}
        for fmt in FORMATS:
            path = report.out_dir / f"{t.name}{SUFFIX[fmt]}"
            if path.exists():
                entry[fmt] = path.name
        if "onnx" in entry:  # the inputs the graph kept (see runner)
            graph = _require("onnx", "reading ONNX").load(str(report.out_dir / entry["onnx"]))
            entry["onnx_inputs"] = [i.name for i in graph.graph.input]
        errors = report.max_error.get(t.name, {})
        entry["max_error"] = {f: e if math.isfinite(e) else None for f, e in errors.items()}
        models[t.name] = entry
    info: dict[str, Any] = {
        "kind": module.kind,
        "classes": module.class_names(),
        "input_sizes": module.input_sizes,
        "frames": "uint8 RGB (batch, frames, 3, height, width), each frame resized to its size",
        "models": models,
    }
    cost = module.cost_model()
    if isinstance(module, DKPModule):
        info["dkp"] = {
            "times": "fractions of the video (time / duration) in [0, 1]",
            "gflops_student_frame": cost.student_frame,
            "gflops_teacher_frame": cost.teacher_frame,
        }
    if isinstance(module, EarlyExitModule):
        grid = module.net.grid
        steps = EarlyExitSteps(module.net)
        info["early_exit"] = {
            "num_frames": grid.num_frames,
            # null: this checkpoint never stops a video early (its threshold is infinite)
            "thresholds": [t if math.isfinite(t) else None for t in module.policy.thresholds],
            "gflops": list(module.route.gflops),
            "stop": "after step k if max(softmax(logits)) >= thresholds[k]; the last always",
            "steps": [
                {
                    "model": f"early_exit_step{p.checkpoint}",
                    "frames": [grid.group_frames(g) for g in p.groups],  # per group read
                }
                for p in steps.plans
            ],
        }
    return info


def export(
    ckpt: str | Path,
    out_dir: str | Path,
    formats: Sequence[str] = FORMATS,
    opset: int = MIN_OPSET,
    check: bool = True,
    tolerance: float = 1e-4,
) -> ExportReport:
    """Write ``ckpt``'s networks to ``out_dir`` in ``formats`` with ``manifest.json``; with
    ``check``, run every file on generated inputs and raise :class:`ExportError` if one
    differs from PyTorch by more than ``tolerance``."""
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise ValueError(f"--format: {sorted(unknown) or 'none'} given; choose from {FORMATS}")
    if opset < MIN_OPSET:
        raise ValueError(f"--opset: {opset} is below {MIN_OPSET}")
    module = load_module(ckpt, field="--ckpt").float()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = ExportReport(out)
    targets = targets_of(module)
    for target in targets:
        for fmt in formats:
            path = out / f"{target.name}{SUFFIX[fmt]}"
            if fmt == "torchscript":
                write_torchscript(target, path)
            else:
                write_onnx(target, path, opset)
            report.files.append(path)
            if check:
                error = max_error(target, runner(path, target.input_names))
                report.max_error.setdefault(target.name, {})[fmt] = error
    report.files.append(write_json(out / "manifest.json", manifest(module, targets, report)))
    bad = [
        f"{name} ({fmt}): {error:.3g}"
        for name, errors in report.max_error.items()
        for fmt, error in errors.items()
        if not error <= tolerance
    ]
    if bad:
        raise ExportError(f"exported files differ from PyTorch by more than {tolerance}: {bad}")
    return report
