"""Side-by-side timing: repetitions of the compared methods interleave, figures are ratios."""

from __future__ import annotations

import time
from collections.abc import Callable


def interleaved(
    methods: dict[str, Callable[[], object]],
    reps: int,
    warmup: bool = False,
    once: tuple[str, ...] = (),
) -> dict[str, list[float]]:
    """Seconds of each call; every repetition runs every method once, in a rotating order.

    ``warmup`` first calls each method once, untimed (lazy initialisation, caches); methods
    named in ``once`` (long, steady ones) run in the first repetition only."""
    names = list(methods)
    for name in names if warmup else ():
        methods[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order if rep == 0 else [m for m in order if m not in once]:
            start = time.perf_counter()
            methods[name]()
            times[name].append(time.perf_counter() - start)
    return times


def ratio(times: dict[str, list[float]], slow: str, fast: str) -> float:
    """``slow / fast`` of their least-disturbed runs (robust to bursts of load on a shared box)."""
    return best(times[slow]) / best(times[fast])


def best(times: list[float]) -> float:
    """The least-disturbed run (the fairest estimate on a shared machine)."""
    return min(times)
