"""The Hydra commands (``dkp-train``, ``dkp-eval``, ``dkp-exits``): one config, one task.

Each command is ``conf/<config>.yaml`` plus a task, a ``module:function`` taking the composed
config and returning :class:`~dkp.runtime.results.Results`, run through
:func:`~dkp.runtime.jobs.run_job`. The task is imported only when a job runs, so that
``--help`` (the config's ``hydra.help`` template), ``--cfg job`` and tab completion answer
without importing torch.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import hydra
from omegaconf import DictConfig

from dkp.runtime.config import CONFIG_DIR


def load_task(spec: str):
    """The function ``spec`` ("package.module:function") names."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def run_hydra_app(config_name: str, task: str, argv: Sequence[str] | None = None) -> int:
    """Run ``task`` as a Hydra app on ``conf/<config_name>.yaml`` with the command line
    ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""

    @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)
    def app(cfg: DictConfig) -> None:
        from dkp.runtime.jobs import run_job

        run_job(cfg, load_task(task))

    saved = sys.argv
    sys.argv = [saved[0] if saved else config_name, *(sys.argv[1:] if argv is None else argv)]
    try:
        app()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    finally:
        sys.argv = saved
    return 0
