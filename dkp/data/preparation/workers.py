"""One job per video over worker processes, with a progress bar, an ETA and regular saves.

Results arrive as each video finishes (a slow video holds up none of the others). A worker
process that dies on a video (a crash inside FFmpeg) is replaced; the videos it held are
tried again, and one that is in two crashes is given up as ``crashed`` rather than retried
forever. ``save`` runs every ``every`` seconds, at the end and on an interruption, so that a
killed run keeps what it finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import TypeVar

from tqdm import tqdm

Item = TypeVar("Item")
Result = TypeVar("Result")

#: The attempts after which a video whose worker died is given up.
CRASHES_ALLOWED = 2


class Crashed(RuntimeError):
    """The worker process died while it held this item (returned in place of its result)."""


def in_parallel(
    job: Callable[[Item], Result],
    items: Sequence[Item],
    workers: int,
    label: str,
    save: Callable[[], None] | None = None,
    every: float = 30.0,
    progress: bool = True,
) -> Iterator[tuple[Item, Result | Crashed]]:
    """Each item with ``job(item)`` (a picklable top-level function or partial), in the order
    they finish; ``workers`` processes (0: this one)."""
    bar = tqdm(total=len(items), desc=label, unit="video", disable=not progress, mininterval=1.0)
    last_save = time.monotonic()
    try:
        results = _serial(job, items) if workers == 0 else _pooled(job, items, workers)
        for item, result in results:
            bar.update()
            yield item, result
            if save is not None and time.monotonic() - last_save > every:
                save()
                last_save = time.monotonic()
    finally:
        bar.close()
        if save is not None:
            save()


def _serial(job: Callable[[Item], Result], items: Sequence[Item]) -> Iterator[tuple[Item, Result]]:
    for item in items:
        yield item, job(item)


def _pooled(
    job: Callable[[Item], Result], items: Sequence[Item], workers: int
) -> Iterator[tuple[Item, Result | Crashed]]:
    todo = list(reversed(range(len(items))))
    crashes = [0] * len(items)
    while todo:
        running: dict[Future, int] = {}
        pool = ProcessPoolExecutor(workers)
        broken = False
        try:
            while (todo or running) and not broken:
                while todo and len(running) < 2 * workers:  # few in flight: a crash names few
                    i = todo.pop()
                    running[pool.submit(job, items[i])] = i
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    yield items[running.pop(future)], result
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        for i in running.values():  # the pool broke: every video it held is suspect
            crashes[i] += 1
            if crashes[i] >= CRASHES_ALLOWED:
                yield items[i], Crashed("the worker process died reading it")
            else:
                todo.append(i)
