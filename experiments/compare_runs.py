"""Two `make curves` runs compared from their figures folders: how far every point moved (a
median, the largest move, how many land inside the first run's 95 % intervals, per series) and
which claims changed verdict. E.g. one's own run against the tables this repository publishes:

    python experiments/compare_runs.py docs/figures outputs/curves/figures --out outputs/compare
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dkp.reporting.run_comparison import compare_runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="run A's figures folder (curves.csv, verdicts.csv)")
    parser.add_argument("b", type=Path, help="run B's figures folder")
    parser.add_argument("--out", type=Path, default=None, help="write run_shift and run_verdicts")
    args = parser.parse_args(argv)
    try:
        comparison = compare_runs(args.a, args.b, args.out)
    except (OSError, ValueError) as e:
        sys.exit(f"compare_runs: {e}")
    print("\n".join(comparison.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
