"""Prediction: classify your own video files with a trained checkpoint.

Each video is sampled as in training (unless the sampling overrides say otherwise), run
through the model, and reported with its top-k classes, per-frame probabilities of each
prediction source and the GFLOPs it cost. A video that cannot be decoded is reported and
skipped. :func:`predict` is what ``dkp-predict`` runs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch

from dkp.data.annotations.activitynet import ground_truth
from dkp.data.annotations.records import VideoRecord
from dkp.data.dataset import ClipSample, VideoClipDataset, collate_clips
from dkp.data.decoding import PyAVReader, VideoDecodeError, VideoReader
from dkp.evaluation.predictions import PredictionRow, top_classes, write_csv
from dkp.lightning import load_module
from dkp.lightning.base import VideoModule
from dkp.runtime.atomic import write_json


@dataclass
class VideoPrediction:
    """Top-k classes of one video and, per prediction source, per-frame probabilities."""

    path: str
    duration: float
    top: list[tuple[str, float]]
    frame_times: dict[str, list[float]] = field(default_factory=dict)
    frame_probs: dict[str, list[list[float]]] = field(default_factory=dict)
    error: str | None = None
    gflops: float | None = None


@torch.inference_mode()
def predict_videos(
    module: VideoModule,
    paths: list[str | Path],
    sampling_overrides: dict[str, Any] | None = None,
    reader: VideoReader | None = None,
    top_k: int = 5,
    keep_frames: bool = False,
) -> tuple[list[VideoPrediction], list[ClipSample | None]]:
    """Predict each video; returns predictions (with the GFLOPs each video cost) and, with
    ``keep_frames``, the decoded samples."""
    module.eval()
    reader = reader or PyAVReader(skip_nonref=True)
    sampling = module.sampling(sampling_overrides)
    sizes = module.input_sizes
    predictions, samples = [], []
    for path in paths:
        try:
            duration = reader.probe(path).duration
        except VideoDecodeError as err:
            predictions.append(VideoPrediction(str(path), 0.0, [], error=str(err)))
            samples.append(None)
            continue
        record = VideoRecord(Path(path).stem, Path(path), duration, (), "predict")
        dataset = VideoClipDataset(
            [record],
            sampling,
            reader,
            student_size=sizes.get("student", 112),
            teacher_size=sizes.get("teacher", 224),
        )
        sample = dataset[0]
        if not isinstance(sample, ClipSample):
            predictions.append(VideoPrediction(str(path), duration, [], error=sample.reason))
            samples.append(None)
            continue
        batch = collate_clips([sample], num_classes=1)
        probs, costs, _ = module.score(batch)
        names = module.class_names()
        top = top_classes(probs[0], names, top_k)
        prediction = VideoPrediction(str(path), duration, top, gflops=costs[0].gflops)
        for name, series in module.frame_probs(batch).items():
            real = series.mask[0] if series.mask is not None else slice(None)
            prediction.frame_times[name] = series.times[0][real].tolist()
            prediction.frame_probs[name] = series.probs[0][real].tolist()
        predictions.append(prediction)
        samples.append(sample if keep_frames else None)
    return predictions, samples


def plot_prediction(
    prediction: VideoPrediction,
    sample: ClipSample,
    class_index: int,
    class_name: str,
    out: Path,
    role: str = "predicted class",
    segments: Sequence[tuple[float, float]] = (),
) -> Path:
    """Frames and per-frame probability of ``class_name`` (student vs ensemble where present),
    the frames the teacher saw marked and the ground-truth ``segments`` shaded; the title
    says whether the class shown is the true one or the predicted one."""
    from dkp.reporting.figures import plot_frame_probabilities

    stream = "student" if sample.student_frames is not None else "teacher"
    frames = getattr(sample, f"{stream}_frames")
    times = getattr(sample, f"{stream}_times")
    wanted = [n for n in ("student", "ensemble", "teacher") if n in prediction.frame_probs]
    series = {
        name: (
            np.asarray(prediction.frame_times[name]),
            np.asarray(prediction.frame_probs[name])[:, class_index],
        )
        for name in wanted
    }
    top, score = prediction.top[0]
    title = f"{Path(prediction.path).name}: p({class_name}), the {role} (top-1: {top} {score:.2f})"
    teacher = prediction.frame_times.get("teacher", []) if stream == "student" else []
    return plot_frame_probabilities(
        frames, times, series, class_name, out, title, prediction.duration, segments, teacher
    )


def predict(
    ckpt: str | Path,
    videos: Sequence[str | Path],
    top_k: int = 5,
    json_path: Path | None = None,
    csv_path: Path | None = None,
    plot: Path | None = None,
    label: str | None = None,
    annotations: Path | None = None,
    sampling: dict[str, Any] | None = None,
    threads: int = 1,
    out: TextIO | None = None,
) -> int:
    """Classify ``videos`` with the checkpoint ``ckpt``; print each one's top-k classes to
    ``out`` (standard output by default) and write what is asked for: JSON with per-frame
    probabilities, CSV as ``dkp-eval``'s predictions.csv, Fig. S-3 style figures (a PNG for
    one video, else one per video in the folder ``plot``), which show the true class and its
    action where ``annotations`` (an ActivityNet-format file) know the video. Returns 1 if a
    video could not be read, else 0; user errors (a bad checkpoint, sampling or label) raise
    ``ValueError``."""
    out = out or sys.stdout
    module = load_module(ckpt, field="--ckpt")
    if label is not None and label not in module.class_names():
        raise ValueError(f"--label {label!r} is not one of {module.class_names()}")
    truth = ground_truth(annotations) if annotations else {}
    overrides = {k: v for k, v in (sampling or {}).items() if v is not None}
    reader = PyAVReader(threads=threads, skip_nonref=True)
    predictions, samples = predict_videos(
        module, list(videos), overrides, reader, top_k, keep_frames=plot is not None
    )
    for p in predictions:
        if p.error:
            print(f"{p.path}: SKIPPED ({p.error})", file=out)
        else:
            print(f"{p.path}: " + ", ".join(f"{name} {s:.3f}" for name, s in p.top), file=out)
    if json_path:
        write_json(json_path, [asdict(p) for p in predictions])
    if csv_path:
        rows = [PredictionRow(p.path, p.top, p.gflops) for p in predictions if not p.error]
        write_csv(rows, csv_path, top_k)
    if plot:
        single = len(videos) == 1 and plot.suffix.lower() == ".png"
        names = module.class_names()
        for p, sample in zip(predictions, samples, strict=True):
            if sample is None:
                continue
            labels, segments = truth.get(Path(p.path).stem, ([], []))
            shown = label or (labels[0] if labels else p.top[0][0])
            role = "true class" if shown in labels else "predicted class"
            if label is not None and shown not in labels and shown != p.top[0][0]:
                role = "class asked for"
            path = plot if single else plot / f"{Path(p.path).stem}.png"
            figure = plot_prediction(p, sample, names.index(shown), shown, path, role, segments)
            print(f"figure: {figure}", file=out)
    return 1 if any(p.error for p in predictions) else 0
