"""``dkp-train``: train a model from config groups (``dkp-train --help``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dkp.runtime.hydra_app import run_hydra_app


def main(argv: Sequence[str] | None = None) -> int:
    return run_hydra_app("train", "dkp.tasks.train:train", argv, resume=True)


if __name__ == "__main__":
    sys.exit(main())
