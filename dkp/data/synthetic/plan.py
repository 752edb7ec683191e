"""Planning: everything that decides a video's pixels, drawn from the seed (no rendering)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dkp.data.annotations.records import SUBSETS
from dkp.data.synthetic.config import (
    BRIEF_GROUP,
    EVENT_GAP,
    ID_ALPHABET,
    ID_LENGTH,
    SyntheticConfig,
    class_groups,
)


@dataclass(frozen=True)
class Segment:
    """One action: frames ``[start, end)`` of class ``label``; ``events`` are start frames."""

    start: int
    end: int
    label: str
    events: tuple[int, ...] = ()


@dataclass(frozen=True)
class VideoPlan:
    """Everything that decides one video's pixels; rendering is a pure function of it."""

    index: int
    video_id: str
    subset: str
    label: str  # the primary (balanced) label
    num_frames: int
    segments: tuple[Segment, ...]
    object_start: tuple[float, float]  # (x, y) of the object's top-left corner at frame 0
    object_velocity: tuple[float, float]  # px/s
    event_centres: tuple[tuple[float, float], ...]  # one (x, y) per event, in segment order
    background: dict[str, Any] = field(hash=False)

    def event_frames(self, config: SyntheticConfig) -> list[tuple[int, int, str]]:
        """``(first frame, end frame, label)`` of every event in the video."""
        n = config.event_frames
        return [(s, s + n, seg.label) for seg in self.segments for s in seg.events]


def _video_ids(seed: int, count: int) -> list[str]:
    """Unique YouTube-like ids; no leading '-' (reads as an option) nor 'v_' (the file prefix)."""
    rng = np.random.default_rng([seed, 0])
    alphabet = np.array(list(ID_ALPHABET))
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < count:
        vid = "".join(alphabet[rng.integers(0, len(alphabet), ID_LENGTH)])
        if vid.startswith(("-", "v_")) or vid in seen:
            continue
        seen.add(vid)
        ids.append(vid)
    return ids


def _stratum(config: SyntheticConfig, index: int) -> tuple[int, int, int, int]:
    """``(subset, class, rank, count)`` of video ``index`` (subsets in order, classes
    interleaved): it is the ``rank``-th of the ``count`` videos of that primary class there."""
    c = config.num_classes
    for subset, per_class in enumerate(config.videos_per_class):
        if index < per_class * c:
            return subset, index % c, index // c, per_class
        index -= per_class * c
    raise IndexError(f"video {index} is beyond the dataset's {config.num_videos}")


def _duration(rng: np.random.Generator, config: SyntheticConfig, index: int) -> float:
    """Log-uniform between the shortest and longest duration, stratified: the ``n`` videos of
    a class in a subset fall one in each ``1/n`` of that range (in an order drawn from the
    seed), so no split holds more long, hard videos of a class than another by chance."""
    subset, label, rank, count = _stratum(config, index)
    order = np.random.default_rng([config.seed, 2, subset, label]).permutation(count)
    share = (order[rank] + rng.random()) / count
    log_lo, log_hi = math.log(config.min_duration), math.log(config.max_duration)
    return math.exp(log_lo + share * (log_hi - log_lo))


def _place_segment(
    rng: np.random.Generator, config: SyntheticConfig, lo: int, hi: int, short: bool
) -> tuple[int, int]:
    """An action's ``[start, end)`` frames inside the slot ``[lo, hi)``."""
    slot = hi - lo
    if short:
        length = round(slot * rng.uniform(*config.short_fill))
    else:
        length = round(rng.uniform(config.min_segment, config.max_segment) * config.fps)
        length = min(length, round(0.9 * slot))
    length = min(max(length, config.event_frames + 1), slot)
    start = lo + int(rng.integers(0, slot - length + 1))
    return start, start + length


def _place_events(
    rng: np.random.Generator, config: SyntheticConfig, start: int, end: int
) -> tuple[int, ...]:
    """Start frames of the events of a brief-event segment ``[start, end)``, in order.

    About one per ``event_spacing`` seconds of action: the segment's length over the spacing,
    rounded down or up at random so that the mean is exact, at least one and at most what
    fits. The segment is cut into that many equal slots, each holding one event at a random
    place that ends ``EVENT_GAP`` frames before its slot does (the last slot excepted), so
    two events never merge into one longer flash.
    """
    n = config.event_frames
    length = end - start
    count = math.floor(length / (config.event_spacing * config.fps) + rng.random())
    count = min(max(count, 1), max(1, length // (n + EVENT_GAP)))
    bounds = [start + length * i // count for i in range(count + 1)]
    events = []
    for i in range(count):
        room = bounds[i + 1] - bounds[i] - n - (EVENT_GAP if i < count - 1 else 0)
        events.append(bounds[i] + int(rng.integers(0, room + 1)))
    return tuple(events)


def _background_params(rng: np.random.Generator, config: SyntheticConfig) -> dict[str, Any]:
    w, h = config.width, config.height
    blobs = []
    for _ in range(3):
        sigma = rng.uniform(0.1, 0.22) * min(w, h)
        blobs.append(
            {
                "x": rng.uniform(0, w),
                "y": rng.uniform(0, h),
                "vx": rng.uniform(-0.1, 0.1) * w,  # px/s
                "vy": rng.uniform(-0.1, 0.1) * h,
                "sigma": sigma,
                "luma": rng.uniform(-45, 45),
                "u": rng.uniform(-14, 14),
                "v": rng.uniform(-14, 14),
            }
        )
    angle = rng.uniform(0, 2 * math.pi)
    cycles = rng.uniform(0.5, 1.2)  # across the frame: a period of at least 0.8 frame widths
    return {
        "base": rng.uniform(95, 150),
        "bright_amp": rng.uniform(3, 10),
        "bright_period": rng.uniform(4, 15),
        "bright_phase": rng.uniform(0, 2 * math.pi),
        "wave_amp": rng.uniform(8, 28),
        "wave_kx": cycles * math.cos(angle) / w,
        "wave_ky": cycles * math.sin(angle) / h,
        "wave_phase": rng.uniform(0, 2 * math.pi),
        "pan_x": rng.uniform(-0.06, 0.06) * w,  # px/s
        "pan_y": rng.uniform(-0.06, 0.06) * h,
        "wave_u": rng.uniform(-8, 8),
        "wave_v": rng.uniform(-8, 8),
        "blobs": blobs,
    }


def plan_video(config: SyntheticConfig, index: int, video_id: str | None = None) -> VideoPlan:
    """The plan of video ``index``, drawn from its own RNG seeded by ``(seed, index)``."""
    subset_number, class_number, _, _ = _stratum(config, index)
    subset, label = SUBSETS[subset_number], class_groups(config)[class_number][0]
    if video_id is None:
        video_id = _video_ids(config.seed, config.num_videos)[index]
    rng = np.random.default_rng([config.seed, 1, index])
    duration = _duration(rng, config, index)
    num_frames = max(round(duration * config.fps), 2 * config.event_frames + 2)
    short = num_frames < config.short_duration * config.fps

    labels = [label]
    if rng.random() < config.multi_label_fraction and config.num_classes >= 2:
        others = [name for name, _ in class_groups(config) if name != label]
        labels.append(others[int(rng.integers(0, len(others)))])
        if rng.random() < 0.5:
            labels.reverse()
    slots = np.linspace(0, num_frames, len(labels) + 1).round().astype(int)
    brief = {name for name, group in class_groups(config) if group == BRIEF_GROUP}
    segments = []
    for name, lo, hi in zip(labels, slots[:-1], slots[1:], strict=True):
        start, end = _place_segment(rng, config, int(lo), int(hi), short)
        events = _place_events(rng, config, start, end) if name in brief else ()
        segments.append(Segment(start, end, name, events))

    size = config.object_size
    object_start = (rng.uniform(0, config.width - size), rng.uniform(0, config.height - size))
    speed = config.object_speed
    object_velocity = (rng.uniform(-speed, speed), rng.uniform(-speed, speed))
    radius = 0.3 * min(config.width, config.height)
    centres = []
    for seg in segments:
        for _ in seg.events:
            centres.append(
                (
                    rng.uniform(0.8 * radius, config.width - 0.8 * radius),
                    rng.uniform(0.8 * radius, config.height - 0.8 * radius),
                )
            )
    return VideoPlan(
        index=index,
        video_id=video_id,
        subset=subset,
        label=label,
        num_frames=num_frames,
        segments=tuple(segments),
        object_start=object_start,
        object_velocity=object_velocity,
        event_centres=tuple(centres),
        background=_background_params(rng, config),
    )


def plan_dataset(config: SyntheticConfig) -> list[VideoPlan]:
    """The plans of all videos, in index order (the database order of the annotation file)."""
    config.validate()
    ids = _video_ids(config.seed, config.num_videos)
    return [plan_video(config, i, ids[i]) for i in range(config.num_videos)]


def event_hit_share(plans: Sequence[VideoPlan], config: SyntheticConfig, frames: int) -> float:
    """Percent of the videos with brief events in which ``frames`` evaluation-time frames (one
    per equal segment, as adaptive sampling takes them) land on an event: how much of the
    brief-event classes sparse frames can see at all."""
    # Here, not at the top: dkp.data.sampling imports torch, which dkp-synthetic --help avoids.
    from dkp.data.sampling.frame_times import AdaptiveSampler

    sampler = AdaptiveSampler(frames)
    flashing = [p for p in plans if any(s.events for s in p.segments)]
    if not flashing:
        raise ValueError("event_hit_share: no video has brief events")
    hits = 0
    for plan in flashing:
        times = sampler(plan.num_frames / config.fps, training=False, rng=np.random.default_rng(0))
        shown = np.floor(times * config.fps).astype(int)
        hits += any(((shown >= a) & (shown < b)).any() for a, b, _ in plan.event_frames(config))
    return 100.0 * hits / len(flashing)
