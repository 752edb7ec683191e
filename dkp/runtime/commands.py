"""Run a pipeline's commands (``python -m MODULE ...``, ``python SCRIPT ...``) with their output
in a log, each in a child forked from a parent that has imported torch and Lightning once.

A pipeline such as ``make curves`` runs about twenty dkp commands; started afresh, each one
spends 4-5 s importing torch, Lightning, Hydra and torchmetrics before it does anything. A
forked child starts with those modules loaded and nothing else run (the parent only imports
them), so it computes what the fresh command computes, to the last digit. Where forking is
not safe (not Linux) or not asked for, each command is a plain subprocess.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import runpy
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

#: What every dkp command imports first, and slowly.
HEAVY_MODULES = ("torch", "pytorch_lightning", "hydra", "torchmetrics")


def can_fork() -> bool:
    """Whether commands can run in forked children (Linux: fork keeps no stale locks of the
    libraries imported here; macOS's system frameworks are not fork-safe)."""
    return sys.platform == "linux"


class CommandRunner:
    """Runs ``[python, -m, module, args...]`` or ``[python, script, args...]`` (``python``:
    this interpreter, ``sys.executable``) as a forked child of this process (``fork=True``
    where :func:`can_fork`), and any other command, or every one without fork, as a
    subprocess."""

    def __init__(self, fork: bool = True) -> None:
        self.fork = fork and can_fork()

    def __call__(self, args: Sequence[str], log: Path) -> int:
        """Run ``args``, its stdout and stderr into ``log``; its exit status."""
        return self.start(args, log).wait()

    def start(self, args: Sequence[str], log: Path) -> Running:
        """Start ``args``, its stdout and stderr into ``log``, and return without waiting."""
        args = [str(a) for a in args]
        if not self.fork or args[0] != sys.executable:
            with open(log, "w") as out:
                return Running(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT))
        for name in HEAVY_MODULES:  # once: later calls find them in sys.modules
            importlib.import_module(name)
        sys.stdout.flush()
        sys.stderr.flush()
        context = multiprocessing.get_context("fork")
        child = context.Process(target=_run_in_child, args=(args[1:], str(log)))
        child.start()
        return Running(child)


class Running:
    """A started command: a subprocess or a forked child."""

    def __init__(self, process: subprocess.Popen | multiprocessing.process.BaseProcess) -> None:
        self.process = process

    def poll(self) -> int | None:
        """Its exit status, or None while it runs."""
        if isinstance(self.process, subprocess.Popen):
            return self.process.poll()
        return self.process.exitcode

    def wait(self) -> int:
        """Wait for it to end; its exit status."""
        if isinstance(self.process, subprocess.Popen):
            return self.process.wait()
        self.process.join()
        return self.process.exitcode


def _run_in_child(args: list[str], log: str) -> None:
    """In the forked child: output to ``log`` (line-buffered), then run ``args`` as ``python
    ARGS`` would (``sys.argv``, ``sys.path[0]``, ``__main__``); a ``SystemExit`` sets the exit
    status."""
    out = open(log, "w", buffering=1)  # noqa: SIM115 (open until the child exits)
    os.dup2(out.fileno(), 1)  # what C code writes, too
    os.dup2(out.fileno(), 2)
    sys.stdout = sys.stderr = out
    if args[0] == "-m":
        sys.argv = args[1:]
        sys.path[0] = os.getcwd()
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(args)
        sys.path[0] = str(Path(args[0]).resolve().parent)
        runpy.run_path(args[0], run_name="__main__")
