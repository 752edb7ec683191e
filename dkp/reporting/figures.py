"""Figures: the supplement's Fig. S-3 layout (frames above, per-frame probabilities below)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

STYLE = {
    "student": {"color": "tab:blue", "marker": "o", "label": "Student"},
    "ensemble": {"color": "tab:red", "marker": "s", "label": "Dynamic Student-Teacher Ensemble"},
    "propagated": {"color": "tab:purple", "marker": "^", "label": "Student + propagation"},
    "teacher": {"color": "tab:green", "marker": "D", "label": "Teacher"},
}


def plot_frame_probabilities(
    frames: np.ndarray,
    frame_times: np.ndarray,
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    class_name: str,
    out_path: str | os.PathLike[str],
    title: str = "",
    max_frames: int = 8,
) -> Path:
    """Frames ``(N, H, W, 3)`` on top; below, each series' probability of ``class_name`` over
    time (``{name: (times, probs)}``), as in the DKP supplement's Fig. S-3. Writes a PNG."""
    pick = np.unique(
        np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int)
    )
    fig = plt.figure(figsize=(1.6 * max(len(pick), 4), 4.2), constrained_layout=True)
    grid = fig.add_gridspec(2, len(pick), height_ratios=[1, 1.4])
    for col, i in enumerate(pick):
        ax = fig.add_subplot(grid[0, col])
        ax.imshow(frames[i], interpolation="nearest")
        ax.set_title(f"{frame_times[i]:.1f}s", fontsize=8)
        ax.axis("off")
    ax = fig.add_subplot(grid[1, :])
    for name, (times, probs) in series.items():
        style = STYLE.get(name, {"label": name})
        ax.plot(times, probs, linewidth=1.5, markersize=3, **style)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"p({class_name})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return save_png(fig, out_path, title)


def save_png(fig: plt.Figure, out_path: str | os.PathLike[str], title: str = "") -> Path:
    """Title, write as PNG (creating the folder) and close a figure; returns its path."""
    if title:
        fig.suptitle(title, fontsize=10)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
