"""Per-video predictions: top-k classes and scores, GFLOPs spent and exit checkpoint.

One row per video, written as ``predictions.jsonl`` and/or ``predictions.csv`` (and, for
ActivityNet, the official ``submission.json``) by :class:`PredictionWriter` during
``dkp-eval``, and by ``dkp-predict --csv`` for your own videos, with the same columns.
``exit_checkpoint`` is the checkpoint an early-exit model stopped at; it is empty for
models that always run to the end (DKP, a frame classifier).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only
from typing_extensions import override

from dkp.evaluation.activitynet_submission import build_submission, write_submission
from dkp.evaluation.video_scores import SCORES_FILE, VideoScores, write_scores
from dkp.runtime.atomic import write_text

FORMATS = ("jsonl", "csv", "npz")


@dataclass(frozen=True)
class PredictionRow:
    """One video's prediction: its ``top`` (class, score) pairs, best first."""

    video_id: str
    top: list[tuple[str, float]]
    gflops: float | None = None
    exit_checkpoint: int | None = None


def top_classes(probs: torch.Tensor, classes: Sequence[str], k: int) -> list[tuple[str, float]]:
    """The ``k`` most probable (class name, probability) pairs of one video's ``(C,)`` probs."""
    scores, index = probs.detach().float().cpu().topk(min(k, probs.numel()))
    return [(classes[i], round(float(s), 6)) for s, i in zip(scores, index.tolist(), strict=True)]


def csv_fields(row: PredictionRow, top_k: int) -> dict[str, Any]:
    """A row as CSV columns: video_id, gflops, exit_checkpoint, label_1, score_1, ..."""
    fields: dict[str, Any] = {
        "video_id": row.video_id,
        "gflops": "" if row.gflops is None else row.gflops,
        "exit_checkpoint": "" if row.exit_checkpoint is None else row.exit_checkpoint,
    }
    for rank in range(top_k):
        label, score = row.top[rank] if rank < len(row.top) else ("", "")
        fields[f"label_{rank + 1}"], fields[f"score_{rank + 1}"] = label, score
    return fields


def write_csv(rows: Iterable[PredictionRow], path: str | Path, top_k: int) -> Path:
    """Write rows as CSV with ``top_k`` label/score column pairs (atomically)."""
    columns = list(csv_fields(PredictionRow("", []), top_k))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows(csv_fields(row, top_k) for row in rows)
    return write_text(path, text.getvalue())


def write_jsonl(rows: Iterable[PredictionRow], path: str | Path) -> Path:
    """Write rows as JSON lines: ``{"video_id", "top": [[label, score], ...], ...}``."""
    return write_text(path, "".join(json.dumps(asdict(row)) + "\n" for row in rows))


def _gathered(items: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Every process's ``(video id, item)`` pairs, once per video (distributed samplers repeat
    a few videos to even out the shards)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        parts: list[list] = [[] for _ in range(torch.distributed.get_world_size())]
        torch.distributed.all_gather_object(parts, items)
        items = [item for part in parts for item in part]
    unique: dict[str, Any] = {}
    for video_id, item in items:
        unique.setdefault(video_id, item)
    return list(unique.items())


class PredictionWriter(pl.Callback):
    """Writes each validate/test epoch's per-video predictions into ``out_dir``.

    Reads what the eval steps return: the video probabilities (``outputs["probs"]``), what
    each video cost (``outputs["costs"]``: GMACs of what ran on it) and, for a model that
    stops early, the checkpoint each video stopped at (``outputs["exit"]``). Formats:
    ``jsonl`` and ``csv`` (top-k classes), ``npz`` (``scores.npz``: every class's
    probability and the targets, from which curves compute bootstrap intervals).
    ``activitynet_submission`` also writes the official ``submission.json``.
    """

    def __init__(
        self,
        out_dir: str | Path,
        top_k: int = 5,
        formats: Sequence[str] = FORMATS,
        activitynet_submission: bool = False,
    ) -> None:
        unknown = set(formats) - set(FORMATS)
        if unknown:
            raise ValueError(f"formats: {sorted(unknown)} not among {FORMATS}")
        if top_k < 1:
            raise ValueError(f"top_k: must be >= 1, got {top_k}")
        self.out_dir = Path(out_dir)
        self.top_k = top_k
        self.formats = tuple(formats)
        self.activitynet_submission = activitynet_submission
        self.rows: list[tuple[str, tuple]] = []  # (video id, (row, probs, target))
        self._classes: list[str] | None = None

    # --- collecting ---------------------------------------------------------------------
    def _start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.rows = []
        names = pl_module.hparams.get("classes")
        datamodule = getattr(trainer, "datamodule", None)
        if not names and datamodule is not None and hasattr(datamodule, "classes"):
            names = datamodule.classes
        self._classes = list(names) if names else None

    def _collect(self, outputs: Any, batch: Any) -> None:
        if not outputs or "probs" not in outputs:
            return
        probs = outputs["probs"]
        classes = self._classes or [f"class_{i}" for i in range(probs.shape[1])]
        exits = outputs.get("exit")
        exits = exits.tolist() if exits is not None else [None] * len(batch)
        probs_np = probs.detach().float().cpu().numpy()
        target = batch.target.detach().cpu().numpy()
        for i, (video_id, cost) in enumerate(zip(batch.video_ids, outputs["costs"], strict=True)):
            row = PredictionRow(
                video_id=video_id,
                top=top_classes(probs[i], classes, self.top_k),
                gflops=cost.gflops,
                exit_checkpoint=exits[i],
            )
            self.rows.append((video_id, (row, probs_np[i], target[i])))

    @override
    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start(trainer, pl_module)

    @override
    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start(trainer, pl_module)

    @override
    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if not trainer.sanity_checking:
            self._collect(outputs, batch)

    @override
    def on_test_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self._collect(outputs, batch)

    # --- writing ------------------------------------------------------------------------
    @override
    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._write_gathered()

    @override
    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._write_gathered()

    def _write_gathered(self) -> None:
        items = [item for _, item in _gathered(self.rows)]
        if not items:
            self.write([])
            return
        rows, probs, target = zip(*items, strict=True)
        ids = np.asarray([row.video_id for row in rows])
        gflops = np.asarray([row.gflops for row in rows], np.float64)
        self.write(list(rows), VideoScores(ids, np.stack(probs), np.stack(target), gflops))

    @rank_zero_only
    def write(self, rows: list[PredictionRow], scores: VideoScores | None = None) -> list[Path]:
        """Write ``rows`` (and ``scores``) in every configured format; returns the files."""
        written = []
        if "npz" in self.formats and scores is not None:
            written.append(write_scores(self.out_dir / SCORES_FILE, scores))
        if "jsonl" in self.formats:
            written.append(write_jsonl(rows, self.out_dir / "predictions.jsonl"))
        if "csv" in self.formats:
            written.append(write_csv(rows, self.out_dir / "predictions.csv", self.top_k))
        if self.activitynet_submission:
            submission = build_submission((row.video_id, row.top) for row in rows)
            written.append(write_submission(self.out_dir / "submission.json", submission))
        return written
