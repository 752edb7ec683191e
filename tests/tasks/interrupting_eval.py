"""``dkp-eval`` whose job with ``sampling.n_t=3`` is interrupted (KeyboardInterrupt, as Ctrl-C)."""

from __future__ import annotations

import sys

import dkp.tasks.evaluate as task
from dkp.cli.evaluate import main

evaluate = task.evaluate


def interrupted_at_n_t_3(cfg):
    if cfg.sampling.n_t == 3:
        raise KeyboardInterrupt
    return evaluate(cfg)


if __name__ == "__main__":
    task.evaluate = interrupted_at_n_t_3  # the command imports its task when a job runs
    sys.exit(main())
