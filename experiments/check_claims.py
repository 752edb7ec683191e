"""The papers' claims (make_curves.CLAIMS) checked on a run's sweep directories, a paired
bootstrap at equal GFLOPs (dkp.reporting.verdicts): ``--out/verdicts.{md,csv}``.

    python experiments/check_claims.py --out outputs/curves/figures outputs/curves/sweeps/*
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from make_curves import CLAIMS

from dkp.reporting.points import collect_points, series_points
from dkp.reporting.verdicts import write_verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sweeps", type=Path, nargs="+", help="sweep directories (results.json)")
    parser.add_argument("--out", type=Path, required=True, help="folder for verdicts.{md,csv}")
    args = parser.parse_args(argv)
    for folder in args.sweeps:
        if not folder.is_dir():
            sys.exit(f"check_claims: {folder}: no such sweep directory")
    points, _ = collect_points(sorted(set(args.sweeps)))
    if not points:
        sys.exit(f"check_claims: no results.json under {', '.join(map(str, args.sweeps))}")
    print(write_verdicts(CLAIMS, series_points(points), args.out)[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
