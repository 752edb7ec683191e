"""The DKP supplement's Fig. S-3: frames on their time axis, per-frame probabilities below."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
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
    duration: float | None = None,
    segments: Sequence[tuple[float, float]] = (),
    teacher_times: Sequence[float] = (),
    max_frames: int = 8,
) -> Path:
    """Frames ``(N, H, W, 3)`` drawn at their times on a strip above, each series'
    probability of ``class_name`` over time (``{name: (times, probs)}``) below, the
    ground-truth action ``segments`` shaded, and the times the teacher saw marked. PNG."""
    end = float(duration) if duration else float(np.max(frame_times)) * 1.05
    pick = np.unique(
        np.linspace(0, len(frames) - 1, min(max_frames, len(frames))).round().astype(int)
    )
    fig, (strip, ax) = plt.subplots(
        2, 1, figsize=(9, 4.6), sharex=True, height_ratios=[1, 2], constrained_layout=True
    )
    width = end / max(len(pick), 1) * 0.92  # thumbnails side by side at most, never overlapping
    for i in pick:
        t = float(frame_times[i])
        left = min(max(t - width / 2, 0.0), end - width)
        strip.imshow(frames[i], extent=(left, left + width, 0, 1), interpolation="nearest")
        strip.plot([t, t], [0, -0.08], color="black", linewidth=0.8, clip_on=False)
    strip.set_xlim(0, end)
    strip.set_ylim(0, 1)
    strip.set_aspect("auto")
    strip.set_yticks([])
    for spine in ("left", "right", "top"):
        strip.spines[spine].set_visible(False)
    for k, (a, b) in enumerate(segments):
        label = "ground-truth action" if k == 0 else None
        ax.axvspan(a, b, color="tab:green", alpha=0.12, linewidth=0, label=label)
    for name, (times, probs) in series.items():
        style = STYLE.get(name, {"label": name})
        ax.plot(times, probs, linewidth=1.5, markersize=3, **style)
    if len(teacher_times):
        ax.plot(teacher_times, np.full(len(teacher_times), -0.04), "^", color="tab:green",
                markersize=7, clip_on=False, label="frames the teacher saw")  # fmt: skip
    ax.set_ylim(-0.06, 1.04)
    ax.set_xlim(0, end)
    ax.set_xlabel("time (s)")
    ax.set_ylabel(f"p({class_name})")
    ax.grid(alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=3, fontsize=8)
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
