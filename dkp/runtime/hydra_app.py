"""The Hydra commands (``dkp-train``, ``dkp-eval``, ``dkp-exits``): one config, one task.

Each command is ``conf/<config>.yaml`` plus a task, a ``module:function`` taking the composed
config and returning :class:`~dkp.runtime.results.Results`, run through
:func:`~dkp.runtime.jobs.run_job`. The task is imported only when a job runs, so that
``--help`` (the config's ``hydra.help`` template), ``--cfg job`` and tab completion answer
without importing torch.

A user error (a config value, a missing file, a checkpoint of the wrong kind: a
``ValueError`` or ``OSError`` naming it) ends the command with one line and exit code 2;
``DKP_DEBUG=1`` shows its traceback instead. A sweep in which some job failed runs the others,
keeps their results and exits 1.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import hydra
from omegaconf import DictConfig

from dkp.runtime.config import CONFIG_DIR


def load_task(spec: str):
    """The function ``spec`` ("package.module:function") names."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


USER_ERRORS = (ValueError, OSError)


def resume_in_place(argv: list[str]) -> list[str]:
    """``argv`` with ``hydra.run.dir`` set to the run directory of its ``ckpt_path`` (when
    that checkpoint lies in a run's ``checkpoints/``), so a resumed run continues there."""
    given = dict(a.split("=", 1) for a in argv if "=" in a and not a.startswith("-"))
    ckpt = given.get("ckpt_path")
    if not ckpt or "hydra.run.dir" in given or "-m" in argv or "--multirun" in argv:
        return argv
    run_dir = Path(ckpt).resolve().parent.parent
    if Path(ckpt).resolve().parent.name != "checkpoints" or not (run_dir / ".hydra").is_dir():
        return argv
    return [*argv, f"hydra.run.dir={run_dir}"]


def run_hydra_app(
    config_name: str, task: str, argv: Sequence[str] | None = None, resume: bool = False
) -> int:
    """Run ``task`` as a Hydra app on ``conf/<config_name>.yaml`` with the command line
    ``argv`` (default: ``sys.argv[1:]``); returns the exit code. With ``resume``, a run given
    a ``ckpt_path`` of an earlier run continues in that run's directory."""
    prog = f"dkp-{config_name}"
    args = list(sys.argv[1:] if argv is None else argv)
    if resume:
        args = resume_in_place(args)
    failures: list[str] = []

    @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)
    def app(cfg: DictConfig) -> None:
        from dkp.runtime.jobs import run_job

        try:
            if run_job(cfg, load_task(task)) is None:  # failed, in a sweep that goes on
                failures.append(str(cfg.paths.output_dir))
        except USER_ERRORS as err:
            if os.environ.get("DKP_DEBUG"):
                raise
            print(f"{prog}: error: {err}\n  (DKP_DEBUG=1 shows the traceback)", file=sys.stderr)
            raise SystemExit(2) from None

    saved = sys.argv
    sys.argv = [saved[0] if saved else prog, *args]
    try:
        app()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = saved
    if failures:
        print(f"{prog}: {len(failures)} job(s) failed (failed.json in each):", file=sys.stderr)
        print("".join(f"  {path}\n" for path in failures), end="", file=sys.stderr)
        return 1
    return 0
