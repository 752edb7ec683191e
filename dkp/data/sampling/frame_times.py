"""Which moments of a video each network sees, in seconds.

Two strategies from the DKP supplement (Sec. S-1):

* :class:`AdaptiveSampler` ("adaptive"): the same count ``n`` for every video; the video is cut
  into ``n`` equal segments (TSN-style) and one time is drawn per segment: uniformly at random
  inside it when training, at its centre when evaluating. The interval adapts to the duration.
* :class:`FixedIntervalSampler` ("fixed"): one frame every ``interval`` seconds, so the count
  grows with the duration: ``n = clamp(round(duration / interval), min_frames, max_frames)``,
  then the same segment rule with ``n`` segments. The realised spacing ``duration / n`` tends
  to ``interval`` for long videos; ``min_frames`` (default 1) keeps very short videos
  represented and ``max_frames`` (default none) bounds the cost of very long ones.

The supplement sets "the ratio n_s/n_t as 4 and 8" for both strategies while the counts vary
over videos, so by default the student's count is tied to the teacher's, video by video:
``n_s = round(ratio * n_t)`` (:class:`RatioSampler`). Under fixed intervals this spaces the
student ``r_t / ratio`` apart on long videos and still gives a short video, whose teacher
count is clamped to ``min_frames``, ``ratio`` student frames rather than one. Giving ``r_s``
instead samples the student on its own fixed interval.

Student and teacher each own a sampler (:class:`ClipSampling`); both draw from the same video.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from typing_extensions import override


class FrameSampler(Protocol):
    """Gives sorted sample times in ``[0, duration)`` for one video."""

    def __call__(self, duration: float, training: bool, rng: np.random.Generator) -> np.ndarray: ...

    def count(self, duration: float) -> int:
        """How many frames a video of this duration gets."""
        ...


def _segment_times(n: int, duration: float, training: bool, rng: np.random.Generator) -> np.ndarray:
    offsets = rng.random(n) if training else np.full(n, 0.5)
    return (np.arange(n) + offsets) * (duration / n)


def clip_times(sampler: FrameSampler, duration: float, clip: int, clips: int) -> np.ndarray:
    """Evaluation times of temporal clip ``clip`` of ``clips``: the sampler's segments, each
    sampled at ``(clip + 0.5) / clips`` of its length (TSN/TSM's ``twice_sample``, k-fold and
    symmetric). One clip is the segments' centres, the usual evaluation times."""
    if not 0 <= clip < clips:
        raise ValueError(f"clip {clip} is not in 0..{clips - 1}")
    _check_duration(duration)
    n = sampler.count(duration)
    return (np.arange(n) + (clip + 0.5) / clips) * (duration / n)


def _check_duration(duration: float) -> None:
    if not (math.isfinite(duration) and duration > 0):
        raise ValueError(f"duration must be positive and finite, got {duration!r}")


class _SegmentSampler(ABC):
    """Sample times of a sampler defined by its ``count``: one per equal segment of the video."""

    @abstractmethod
    def count(self, duration: float) -> int:
        """How many frames a video of this duration gets."""

    def __call__(self, duration: float, training: bool, rng: np.random.Generator) -> np.ndarray:
        _check_duration(duration)
        return _segment_times(self.count(duration), duration, training, rng)


@dataclass(frozen=True)
class AdaptiveSampler(_SegmentSampler):
    """``num_frames`` times per video, one per equal segment (fixed count, adaptive interval)."""

    num_frames: int

    def __post_init__(self) -> None:
        if not isinstance(self.num_frames, int) or self.num_frames < 1:
            raise ValueError(f"num_frames must be an integer >= 1, got {self.num_frames!r}")

    @override
    def count(self, duration: float) -> int:
        return self.num_frames


@dataclass(frozen=True)
class FixedIntervalSampler(_SegmentSampler):
    """One time every ``interval`` seconds (fixed interval, count proportional to duration)."""

    interval: float
    min_frames: int = 1
    max_frames: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.interval, (int, float)) and self.interval > 0):
            raise ValueError(
                f"interval must be a positive number of seconds, got {self.interval!r}"
            )
        if self.min_frames < 1:
            raise ValueError(f"min_frames must be >= 1, got {self.min_frames!r}")
        if self.max_frames is not None and self.max_frames < self.min_frames:
            raise ValueError(
                f"max_frames ({self.max_frames}) must be >= min_frames ({self.min_frames})"
            )

    def count(self, duration: float) -> int:
        n = max(self.min_frames, math.floor(duration / self.interval + 0.5))
        return n if self.max_frames is None else min(n, self.max_frames)


@dataclass(frozen=True)
class RatioSampler(_SegmentSampler):
    """``round(ratio * base.count(duration))`` times per video: a count tied to another one."""

    base: FrameSampler
    ratio: float

    def __post_init__(self) -> None:
        if not (isinstance(self.ratio, (int, float)) and self.ratio > 0):
            raise ValueError(f"ratio must be positive, got {self.ratio!r}")

    def count(self, duration: float) -> int:
        return max(1, round(self.ratio * self.base.count(duration)))


@dataclass(frozen=True)
class ClipSampling:
    """The student's and the teacher's samplers; either may be None when that network is absent."""

    student: FrameSampler | None
    teacher: FrameSampler | None
    strategy: str = "adaptive"
    config: dict | None = None  # the build_sampling arguments, recorded in checkpoints

    def __post_init__(self) -> None:
        if self.student is None and self.teacher is None:
            raise ValueError("sampling: at least one of student and teacher needs a sampler")


def _positive_int(name: str, value: object, missing: str) -> int:
    if value is None:
        raise ValueError(f"sampling.{name}: {missing}")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"sampling.{name}: must be an integer >= 1, got {value!r}")
    return value


def _positive_float(name: str, value: object, missing: str) -> float:
    if value is None:
        raise ValueError(f"sampling.{name}: {missing}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"sampling.{name}: must be a positive interval in seconds, got {value!r}")
    return float(value)


def build_sampling(
    strategy: str = "adaptive",
    n_t: int | None = None,
    n_s: int | None = None,
    r_t: float | None = None,
    r_s: float | None = None,
    ratio: float | None = None,
    min_frames: int = 1,
    max_frames: int | None = None,
    networks: tuple[str, ...] | list[str] = ("student", "teacher"),
) -> ClipSampling:
    """Build student/teacher samplers from the config's fields.

    ``adaptive`` uses counts ``n_s``/``n_t``; ``fixed`` uses intervals ``r_s``/``r_t`` in
    seconds. A missing student value is derived from the teacher's and ``ratio`` (the
    supplement's n_s/n_t): ``n_s = ratio * n_t``, per video under ``fixed`` (a
    :class:`RatioSampler` on the teacher's fixed interval). ``networks`` names
    which of the two are sampled (a teacher-only stage needs no student frames). When both
    are, the student must see at least as many frames as the teacher (``n_s >= n_t``,
    ``r_s <= r_t``), as DKP assumes.
    """
    unknown = set(networks) - {"student", "teacher"}
    if unknown or not networks:
        raise ValueError(
            f"sampling.networks: {list(networks)} must name 'student' and/or 'teacher'"
        )
    if ratio is not None and not ratio > 0:
        raise ValueError(f"sampling.ratio: must be positive, got {ratio!r}")
    want_student, want_teacher = "student" in networks, "teacher" in networks
    if strategy == "adaptive":
        if want_teacher:
            n_t = _positive_int("n_t", n_t, "required for adaptive sampling with a teacher")
        if want_student and n_s is None and n_t is not None and ratio is not None:
            n_s = round(ratio * n_t)
        if want_student:
            n_s = _positive_int("n_s", n_s, "give n_s, or n_t and ratio")
        if want_student and want_teacher and n_s < n_t:
            raise ValueError(
                f"sampling.n_s: the student must see at least as many frames as the teacher, "
                f"got n_s={n_s} < n_t={n_t}" + (f" (from ratio={ratio})" if ratio else "")
            )
        student = AdaptiveSampler(n_s) if want_student else None
        teacher = AdaptiveSampler(n_t) if want_teacher else None
    elif strategy == "fixed":
        if want_teacher:
            r_t = _positive_float("r_t", r_t, "required for fixed-interval sampling with a teacher")
        tied = want_student and r_s is None and ratio is not None
        if tied:
            r_t = _positive_float("r_t", r_t, "required with ratio for fixed-interval sampling")
        elif want_student:
            r_s = _positive_float("r_s", r_s, "give r_s, or r_t and ratio")
        if want_student and want_teacher and (ratio < 1 if tied else r_s > r_t):
            field, got = (
                ("ratio", f"ratio={ratio:g} < 1")
                if tied
                else ("r_s", f"r_s={r_s:g} s > r_t={r_t:g} s")
            )
            raise ValueError(
                f"sampling.{field}: the student must sample at least as often as the teacher, "
                f"got {got}"
            )
        kw = {"min_frames": min_frames, "max_frames": max_frames}
        teacher_rule = FixedIntervalSampler(r_t, **kw) if r_t is not None else None
        if tied:
            student = RatioSampler(teacher_rule, ratio)
        else:
            student = FixedIntervalSampler(r_s, **kw) if want_student else None
        teacher = teacher_rule if want_teacher else None
    else:
        raise ValueError(f"sampling.strategy: {strategy!r} is not 'adaptive' or 'fixed'")
    config = {
        "strategy": strategy,
        "n_t": n_t,
        "n_s": n_s,
        "r_t": r_t,
        "r_s": r_s,
        "ratio": ratio,
        "min_frames": min_frames,
        "max_frames": max_frames,
        "networks": list(networks),
    }
    return ClipSampling(student=student, teacher=teacher, strategy=strategy, config=config)


ADAPTIVE_DEFAULT = {"strategy": "adaptive", "n_t": 4, "ratio": 4}  # conf/sampling/adaptive.yaml


def sampling_with(
    recorded: dict | None, overrides: dict | None, networks: list[str] | tuple[str, ...]
) -> dict:
    """The :func:`build_sampling` arguments of a recorded sampling (a checkpoint's; adaptive
    n_t = 4, ratio 4 if none) with ``overrides`` applied, for the streams ``networks``.

    Overrides that are None are ignored; one that switches ``strategy`` drops the recorded
    strategy's counts or intervals, so adaptive counts never leak into fixed-interval sampling.
    """
    config = dict(recorded or ADAPTIVE_DEFAULT)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    if "strategy" in given and given["strategy"] != config.get("strategy"):
        config.update({k: None for k in ("n_t", "n_s", "r_t", "r_s")})
    config.update(given)
    config["networks"] = list(networks)
    return config
