"""Jobs over worker processes: every result comes back, a crash costs only its own video."""

from __future__ import annotations

import os

from dkp.data.preparation.workers import Crashed, in_parallel


def square_or_die(x: int) -> int:
    if x == 3:
        os._exit(1)  # a crash inside FFmpeg looks like this to the pool
    return x * x


def test_every_item_gets_its_result_and_a_crash_only_its_own():
    saves = []
    results = dict(in_parallel(square_or_die, list(range(8)), 2, "t", lambda: saves.append(1)))
    assert isinstance(results.pop(3), Crashed)
    assert results == {x: x * x for x in range(8) if x != 3}
    assert saves  # saved at the end at least


def test_no_workers_runs_in_this_process():
    assert dict(in_parallel(abs, [-1, 2], 0, "t", progress=False)) == {-1: 1, 2: 2}
