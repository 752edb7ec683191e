"""``dkp-eval``: score a checkpoint under any sampling setting (``dkp-eval --help``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dkp.runtime.hydra_app import run_hydra_app


def main(argv: Sequence[str] | None = None) -> int:
    return run_hydra_app("eval", "dkp.tasks.evaluate:evaluate", argv)


if __name__ == "__main__":
    sys.exit(main())
