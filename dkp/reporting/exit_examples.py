"""The supplement's figure: example videos that stop at the first, a middle and the last
checkpoint, a few frames each with the predicted (and true) class."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from dkp.reporting.figures import save_png


@dataclass
class ExitExample:
    """One video: frames ``(N, H, W, 3)`` uint8 in time order and where/how it stopped."""

    video_id: str
    frames: np.ndarray
    checkpoint: int  # 1-based
    predicted: str
    truth: str


def pick_examples(
    exit_index: np.ndarray,
    correct: np.ndarray,
    checkpoints: int,
    per_row: int = 2,
) -> list[tuple[int, list[int]]]:
    """For the first, middle and last checkpoint: up to ``per_row`` videos stopping there,
    correctly classified ones first (as the supplement shows), in index order."""
    rows = []
    for k in dict.fromkeys([0, (checkpoints - 1) // 2, checkpoints - 1]):
        here = np.flatnonzero(exit_index == k)
        ordered = [int(i) for i in here if correct[i]] + [int(i) for i in here if not correct[i]]
        rows.append((k, ordered[:per_row]))
    return rows


def plot_exit_examples(
    rows: Sequence[tuple[int, Sequence[ExitExample]]],
    out_path: str | os.PathLike[str],
    frames_per_video: int = 4,
    title: str = "",
) -> Path:
    """One row per checkpoint, each with its example videos side by side. Writes a PNG."""
    per_row = max([len(examples) for _, examples in rows] + [1])
    fig = plt.figure(
        figsize=(1.3 * frames_per_video * per_row + 0.4, 1.9 * len(rows)), constrained_layout=True
    )
    figs = fig.subfigures(len(rows), 1, squeeze=False)[:, 0]
    for sub, (k, examples) in zip(figs, rows, strict=True):
        sub.suptitle(f"stopped at checkpoint {k + 1}", fontsize=9, fontweight="bold")
        cells = sub.subfigures(1, per_row, squeeze=False)[0]
        for cell, example in zip(cells, list(examples) + [None] * per_row, strict=False):
            axes = cell.subplots(1, frames_per_video, squeeze=False)[0]
            for ax in axes:
                ax.axis("off")
            if example is None:
                continue
            n = len(example.frames)
            pick = np.unique(np.linspace(0, n - 1, min(frames_per_video, n)).round().astype(int))
            for ax, i in zip(axes, pick, strict=False):
                ax.imshow(example.frames[i], interpolation="nearest")
            mark = "✓" if example.predicted == example.truth else "✗"
            cell.supxlabel(f"{example.predicted} {mark} (true: {example.truth})", fontsize=7)
    return save_png(fig, out_path, title)
