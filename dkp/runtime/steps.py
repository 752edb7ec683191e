"""A pipeline's steps, run up to ``jobs`` at a time, each as soon as the steps it needs are done.

One dkp command on two cores keeps them busy about three quarters of the time (one torch
thread computes while one DataLoader worker decodes, and each waits on the other); a second
command beside it fills the gaps. Each command computes what it computes alone, to the last
digit: its threads and workers are set by its own config, not by what runs beside it.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dkp.runtime.commands import CommandRunner, Running
from dkp.runtime.jobs import FAILED, SKIPPED, WROTE

POLL_SECONDS = 0.2


def found_done(log: Path) -> bool:
    """Whether a step's command found all its work finished by an earlier run: its log names
    jobs it skipped and none it ran (:mod:`dkp.runtime.jobs` logs each). Such a step took 0 to
    4 s where its work takes minutes, so it does not count in its kind's pace."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return False
    return f"{SKIPPED}: " in text and f"{WROTE}: " not in text and f"{FAILED} (" not in text


@dataclass(frozen=True)
class Step:
    """One command of a pipeline: built when it starts (so it may read what the steps it
    ``needs`` wrote), its output in ``log``; ``done`` runs here once it succeeded."""

    name: str
    command: Callable[[], list[str]]
    log: Path
    needs: tuple[str, ...] = ()
    done: Callable[[], None] | None = None
    kind: str = ""  # steps of one kind take about as long (the time-left estimate)


class Progress:
    """Steps done out of a total, the time spent, and the time left, ``jobs`` at a time.

    Each step left counts at the mean time of the steps of its kind done so far; a kind not
    seen yet at its ``weights`` entry (a prior relative time, 1 if absent) times the seconds
    per unit of weight done so far, so a pipeline's short report steps do not count as long as
    its trainings. (A pace from the wall clock alone would read the first of two steps that ran
    side by side as twice its share.) Steps that found their work done (a resumed or extended
    run) count as done but not in the pace."""

    def __init__(self, kinds: Sequence[str] = (), jobs: int = 1) -> None:
        self.begin(kinds, jobs)

    def begin(
        self, kinds: Sequence[str], jobs: int = 1, weights: Mapping[str, float] | None = None
    ) -> None:
        """Count anew from now: one step of each of ``kinds`` to come, ``jobs`` at a time."""
        self.left, self.total, self.jobs = Counter(kinds), len(kinds), jobs
        self.weights = dict(weights or {})
        self.took: dict[str, list[float]] = {}
        self.done = 0
        self.start = time.time()

    def step(self, seconds: float, kind: str = "", found_done: bool = False) -> str:
        """Count a step of ``kind`` that took ``seconds`` (in the pace unless it
        ``found_done`` its work); its progress line."""
        self.done += 1
        self.left[kind] = max(self.left[kind] - 1, 0)
        if not found_done:
            self.took.setdefault(kind, []).append(seconds)
        spent = time.time() - self.start
        left = self.time_left()
        shown = f"~{clock(left)} left" if math.isfinite(left) else "time left not known yet"
        return f"[{self.done}/{self.total}, {clock(spent)} spent, {shown}]"

    def time_left(self) -> float:
        """Seconds the steps left should take, ``jobs`` at a time (NaN before any step ran)."""
        if not sum(self.left.values()):
            return 0.0
        if not self.took:
            return math.nan
        weight = self.weights.get
        unit = sum(map(sum, self.took.values())) / sum(
            weight(kind, 1.0) * len(times) for kind, times in self.took.items()
        )
        each = {
            kind: sum(self.took[kind]) / len(self.took[kind])
            if kind in self.took
            else weight(kind, 1.0) * unit
            for kind in self.left
        }
        return sum(each[kind] * count for kind, count in self.left.items()) / self.jobs


def clock(seconds: float) -> str:
    """``m:ss``."""
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


class StepFailed(RuntimeError):
    """A step's command ended with a non-zero status (the steps running beside it finished)."""

    def __init__(self, step: Step, status: int) -> None:
        super().__init__(f"{step.name} failed ({status}); log {step.log}")
        self.step, self.status = step, status


def _shown(args: list[str]) -> list[str]:
    """A command as a reader would type it: ``dkp.cli.train ...`` for ``python -m ...``, and
    paths side by side in one folder as bash's ``folder/{a,b}`` (a report reads dozens)."""
    if args[:1] == [sys.executable]:
        args = args[2:] if args[1:2] == ["-m"] else args[1:]
    shown: list[str] = []
    run: list[str] = []  # consecutive plain paths in one folder

    def flush() -> None:
        if len(run) > 1:
            names = ",".join(path.rpartition("/")[2] for path in run)
            shown.append(f"{run[0].rpartition('/')[0]}/{{{names}}}")
        else:
            shown.extend(run)
        run.clear()

    for arg in args:
        plain = "/" in arg and not set(arg) & set(" {},=$'\"")
        if not (plain and run and arg.rpartition("/")[0] == run[0].rpartition("/")[0]):
            flush()
        (run if plain else shown).append(arg)
    flush()
    return shown


def _check(steps: Sequence[Step]) -> None:
    names = [s.name for s in steps]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"two steps are named {name!r}")
    for step in steps:
        for need in step.needs:
            if need not in names:
                raise ValueError(f"step {step.name!r} needs {need!r}, which is not a step")


def run_steps(
    steps: Sequence[Step],
    runner: CommandRunner,
    jobs: int = 1,
    say: Callable[[str], None] = lambda line: print(line, flush=True),
    progress: Progress | None = None,
) -> None:
    """Run every step once all it ``needs`` are done, at most ``jobs`` at a time, ready steps
    in the order given. After a failure nothing new starts; the running steps finish (their
    work is kept) and :class:`StepFailed` names the first one that failed."""
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    _check(steps)
    waiting, done = list(steps), set()
    running: dict[str, tuple[Step, Running, float]] = {}
    failed: StepFailed | None = None
    while waiting or running:
        ready = [s for s in waiting if done.issuperset(s.needs)]
        while failed is None and ready and len(running) < jobs:
            step = ready.pop(0)
            waiting.remove(step)
            args = step.command()
            step.log.parent.mkdir(parents=True, exist_ok=True)
            say("  $ " + " ".join(_shown(args)))
            running[step.name] = (step, runner.start(args, step.log), time.time())
        if not running:
            if failed is not None:
                raise failed
            blocked = ", ".join(s.name for s in waiting)
            raise ValueError(f"steps that need each other: {blocked}")
        time.sleep(POLL_SECONDS)
        for name, (step, process, began) in list(running.items()):
            status = process.poll()
            if status is None:
                continue
            del running[name]
            if status != 0:
                failed = failed or StepFailed(step, status)
                continue
            done.add(name)
            took = time.time() - began
            counted = ""
            if progress is not None:
                counted = f" {progress.step(took, step.kind, found_done(step.log))}"
            say(f"    {name} done in {clock(took)}{counted}")
            if step.done is not None:
                step.done()
    if failed is not None:
        raise failed
