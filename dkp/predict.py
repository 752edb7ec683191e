"""Classify your own videos with a trained checkpoint: ``dkp-predict --ckpt X video.mp4 ...``.

Prints the top-k classes of each video; ``--json`` writes them (with per-frame
probabilities), ``--csv`` writes the columns of ``dkp-eval``'s predictions.csv (video path as
id, with the GFLOPs each video cost), ``--plot`` draws frames and per-frame probabilities
(student vs ensemble for DKP, the DKP supplement's Fig. S-3 layout). Frames are sampled as
in training unless the sampling options say otherwise. A video that cannot be decoded is
reported and skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dkp.data.dataset import ClipSample, VideoClipDataset, collate_clips
from dkp.data.records import VideoRecord
from dkp.data.sampling import build_sampling
from dkp.data.video import PyAVReader, VideoDecodeError, VideoReader
from dkp.evaluation.cost import CostModel, cost_model
from dkp.evaluation.predictions import PredictionRow, top_classes, write_csv
from dkp.modules import load_module
from dkp.modules.base import VideoModule


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


def sampling_for(module: VideoModule, overrides: dict[str, Any] | None = None):
    """The module's training sampling (recorded in its checkpoint) with ``overrides`` applied."""
    cfg = dict(module.hparams.get("sampling") or {"strategy": "adaptive", "n_t": 4, "ratio": 4})
    cfg.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if "strategy" in (overrides or {}):  # switching strategy drops the other one's fields
        keep = ("n_t", "n_s") if cfg["strategy"] == "adaptive" else ("r_t", "r_s")
        cfg.update({k: None for k in ("n_t", "n_s", "r_t", "r_s") if k not in keep})
        cfg.update({k: v for k, v in overrides.items() if v is not None})
    cfg["networks"] = list(module.networks)
    return build_sampling(**cfg)


def class_names(module: VideoModule, num_classes: int) -> list[str]:
    names = module.hparams.get("classes")
    return list(names) if names else [f"class_{i}" for i in range(num_classes)]


def _count(times: np.ndarray | None) -> int:
    return 0 if times is None else len(times)


@torch.inference_mode()
def predict_videos(
    module: VideoModule,
    paths: list[str | Path],
    sampling_overrides: dict[str, Any] | None = None,
    reader: VideoReader | None = None,
    top_k: int = 5,
    keep_frames: bool = False,
    cost: CostModel | None = None,
) -> tuple[list[VideoPrediction], list[ClipSample | None]]:
    """Predict each video; returns predictions and (if ``keep_frames``) the decoded samples.

    With ``cost`` (the module's cost model), each prediction also says its GFLOPs."""
    module.eval()
    reader = reader or PyAVReader(skip_nonref=True)
    sampling = sampling_for(module, sampling_overrides)
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
        probs = module.video_probs(batch)[0]
        names = class_names(module, probs.numel())
        prediction = VideoPrediction(str(path), duration, top_classes(probs, names, top_k))
        if cost is not None:
            n_s, n_t = (_count(getattr(sample, f"{n}_times")) for n in ("student", "teacher"))
            prediction.gflops = cost.video(n_s, n_t)
        for name, series in module.frame_probs(batch).items():
            real = series.mask[0] if series.mask is not None else slice(None)
            prediction.frame_times[name] = series.times[0][real].tolist()
            prediction.frame_probs[name] = series.probs[0][real].tolist()
        predictions.append(prediction)
        samples.append(sample if keep_frames else None)
    return predictions, samples


def plot_prediction(
    prediction: VideoPrediction, sample: ClipSample, class_index: int, class_name: str, out: Path
) -> Path:
    """Frames and per-frame probability of ``class_name`` (student vs ensemble where present)."""
    from dkp.evaluation.figures import plot_frame_probabilities

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
    title = f"{Path(prediction.path).name}: {class_name} ({prediction.top[0][1]:.2f})"
    return plot_frame_probabilities(frames, times, series, class_name, out, title=title)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dkp-predict", description=__doc__.split("\n\n")[0])
    parser.add_argument("videos", nargs="+", help="video files to classify")
    parser.add_argument("--ckpt", required=True, help="a dkp Lightning checkpoint (.ckpt)")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write predictions to this JSON file")
    parser.add_argument("--csv", type=Path, help="write top-k classes and GFLOPs as CSV")
    parser.add_argument("--plot", type=Path, help="PNG file (one video) or folder for figures")
    parser.add_argument(
        "--label", help="class whose per-frame probability --plot draws (default: the top-1)"
    )
    parser.add_argument("--strategy", choices=["adaptive", "fixed"])
    parser.add_argument("--n-s", type=int)
    parser.add_argument("--n-t", type=int)
    parser.add_argument("--r-s", type=float)
    parser.add_argument("--r-t", type=float)
    parser.add_argument("--threads", type=int, default=1, help="decoder threads")
    args = parser.parse_args(argv)

    from dkp.modules.checkpoint import CheckpointError

    try:
        module = load_module(args.ckpt)
    except CheckpointError as err:
        print(f"dkp-predict: {err}", file=sys.stderr)
        return 2
    overrides = {"strategy": args.strategy, "n_s": args.n_s, "n_t": args.n_t}
    overrides.update({"r_s": args.r_s, "r_t": args.r_t})
    overrides = {k: v for k, v in overrides.items() if v is not None}
    try:
        predictions, samples = predict_videos(
            module,
            args.videos,
            overrides,
            PyAVReader(threads=args.threads, skip_nonref=True),
            args.top_k,
            keep_frames=args.plot is not None,
            cost=cost_model(module) if args.csv else None,
        )
    except ValueError as err:
        print(f"dkp-predict: {err}", file=sys.stderr)
        return 2
    for p in predictions:
        if p.error:
            print(f"{p.path}: SKIPPED ({p.error})")
            continue
        ranked = ", ".join(f"{name} {score:.3f}" for name, score in p.top)
        print(f"{p.path}: {ranked}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(p) for p in predictions], indent=2))
    if args.csv:
        rows = [PredictionRow(p.path, p.top, p.gflops) for p in predictions if not p.error]
        write_csv(rows, args.csv, args.top_k)
    if args.plot:
        single = len(args.videos) == 1 and args.plot.suffix.lower() == ".png"
        for p, sample in zip(predictions, samples, strict=True):
            if sample is None:
                continue
            names = class_names(module, len(next(iter(p.frame_probs.values()))[0]))
            label = args.label or p.top[0][0]
            if label not in names:
                print(f"dkp-predict: --label {label!r} is not one of {names}", file=sys.stderr)
                return 2
            out = args.plot if single else args.plot / f"{Path(p.path).stem}.png"
            print(f"figure: {plot_prediction(p, sample, names.index(label), label, out)}")
    return 1 if any(p.error for p in predictions) else 0


if __name__ == "__main__":
    sys.exit(main())
