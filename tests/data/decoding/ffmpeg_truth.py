"""Ground truth from an independent full decode: the ffmpeg CLI (Debian's build, another
FFmpeg than PyAV's), and the reader's frames checked against it byte for byte.

Frames are compared as the decoder output them (their own pixel format, planes packed as
``ffmpeg -f rawvideo`` writes them), so no colour conversion stands between the two.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from av.video.frame import VideoFrame

from dkp.data.decoding import PyAVReader
from tests.data.decoding.corpus import shown_at

needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="needs the ffmpeg and ffprobe CLI (make test-slow installs Debian's ffmpeg)",
)
#: The first video stream that is a moving picture, as ffmpeg picks it (not cover art).
VIDEO = "V:0"


def ffmpeg(*args: str | Path) -> None:
    """Run the ffmpeg CLI quietly (SVT-AV1 too); raise if it fails."""
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *map(str, args)]
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "SVT_LOG": "1"})


@dataclass
class FullDecode:
    """Every frame a full decode shows: its time from the first frame and its raw bytes."""

    times: list[float]
    frames: list[bytes]
    pix_fmt: str

    def shown(self, t: float) -> int:
        """Index of the frame shown at time ``t``."""
        return shown_at(self.times, t)

    def probe_times(self) -> list[float]:
        """Times that test every frame: its start, just before it, the middle of its span,
        and times before the first and past the last."""
        times = [-1.0, self.times[-1] + 60.0]
        for i, start in enumerate(self.times):
            times.append(start)
            if i:
                times.append(start - 1e-4)
            if i + 1 < len(self.times):
                times.append((start + self.times[i + 1]) / 2)
        return times


def full_decode(path: Path) -> FullDecode:
    """The ffmpeg CLI's full decode of ``path``'s video stream: best-effort timestamps (as
    ``ffprobe -show_frames`` gives them) and every frame as raw bytes in its own format."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", VIDEO, "-show_frames", "-show_entries"]
        + ["frame=best_effort_timestamp_time,pix_fmt", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    entries = json.loads(probe.stdout)["frames"]
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", f"0:{VIDEO}"]
        + ["-fps_mode", "passthrough", "-f", "rawvideo", "-"],
        capture_output=True,
        check=True,
    ).stdout
    size = len(raw) // len(entries)
    assert size * len(entries) == len(raw), "ffprobe and ffmpeg disagree on the frame count"
    stamps = [e.get("best_effort_timestamp_time") for e in entries]
    known = [float(s) for s in stamps if s is not None]
    step = float(np.median(np.diff(known))) if len(known) > 1 else 0.04
    times: list[float] = []
    for s in stamps:  # frames drained at the end may have none: one frame step apart
        times.append(float(s) if s is not None else times[-1] + step)
    assert all(b > a for a, b in zip(times, times[1:], strict=False)), times
    frames = [raw[i * size : (i + 1) * size] for i in range(len(entries))]
    return FullDecode([t - times[0] for t in times], frames, entries[0]["pix_fmt"])


def raw(frame: VideoFrame) -> bytes:
    """A decoded frame's planes packed as ``ffmpeg -f rawvideo`` writes them."""
    out = []
    for i, plane in enumerate(frame.planes):
        comps = [c for c in frame.format.components if c.plane == i]
        row = plane.width * sum((c.bits + 7) // 8 for c in comps)
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: plane.height]
        out.append(rows[:, :row].tobytes())
    return b"".join(out)


def wrong_frames(reader: PyAVReader, path: Path, truth: FullDecode, per_read: int = 3) -> list:
    """Read every probe time of ``truth`` in reads of ``per_read`` shuffled times; return
    (time, frame expected, frames matched) for each that is not the full decode's."""
    times = truth.probe_times()
    random.Random(0).shuffle(times)
    wrong = []
    for k in range(0, len(times), per_read):
        group = times[k : k + per_read]
        for t, frame in zip(group, reader.frames(path, group), strict=True):
            got = raw(frame)
            want = truth.shown(t)
            if got != truth.frames[want]:
                wrong.append((t, want, [i for i, f in enumerate(truth.frames) if f == got]))
    return sorted(wrong)
