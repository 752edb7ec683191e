"""The per-frame figure (Fig. S-3): thumbnails at their times, the action shaded, teacher marked."""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Rectangle

from dkp.reporting import figures


def test_frames_sit_on_the_time_axis_with_the_action_and_the_teachers_frames(tmp_path, monkeypatch):
    drawn = {}
    monkeypatch.setattr(
        figures, "save_png", lambda fig, _out, title="": drawn.update(fig=fig, title=title)
    )
    times = np.array([1.0, 3.0, 5.0, 7.0, 9.0, 11.0, 13.0, 15.0, 17.0, 19.0])
    frames = np.zeros((10, 8, 8, 3), np.uint8)
    series = {"student": (times, np.linspace(0, 1, 10)), "ensemble": (times, np.ones(10))}
    figures.plot_frame_probabilities(
        frames, times, series, "Checkerboard", tmp_path / "f.png", "v: p(Checkerboard)",
        duration=20.0, segments=[(4.0, 12.0)], teacher_times=[2.5, 7.5, 12.5, 17.5],
    )  # fmt: skip
    fig = drawn["fig"]
    strip, ax = fig.axes
    centres = [np.mean(image.get_extent()[:2]) for image in strip.images]
    assert len(centres) == 8 and ax.get_xlim() == (0.0, 20.0)
    assert all(
        abs(c - t) < 20 / 8 for c, t in zip(centres, times[[0, 1, 3, 4, 5, 6, 8, 9]], strict=True)
    )
    (span,) = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert (span.get_x(), span.get_x() + span.get_width()) == (4.0, 12.0)
    teacher = [line for line in ax.lines if line.get_label() == "frames the teacher saw"]
    assert list(teacher[0].get_xdata()) == [2.5, 7.5, 12.5, 17.5]
    assert fig.legends and not ax.get_legend()  # the legend sits outside the data
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "ground-truth action" in labels and "Dynamic Student-Teacher Ensemble" in labels
