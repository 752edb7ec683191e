"""How much one test split moves a curve point: a finished `make curves` run's models scored
again, by the same sweeps, on a second validation and test split drawn independently (another
generator seed), and every point compared with the first split's.

The bootstrap interval of a point estimates this move from one split; this measures it. Writes
``--out/figures/split_shift.{md,csv}``, the claims decided again on the second split
(``--out/figures/verdicts.{md,csv}``, as `make curves` writes them), and prints the summary.
``--against`` compares with another run of this script instead, so two splits of a size other
than the first's (``--videos-per-class``) measure how the move shrinks with more test videos.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import make_curves
from make_curves import (
    CLAIMS,
    EXITS,
    PY,
    SWEEPS,
    evaluation_steps,
    run,
    run_all,
    seed_runs,
    trained_checkpoints,
)

from dkp.data.synthetic.config import SyntheticConfig
from dkp.reporting.point_shift import ShiftSummary, pair_points, write_shift_table
from dkp.reporting.points import collect_points, series_points
from dkp.reporting.verdicts import write_verdicts

EXIT_NAMES = {name for name, *_ in EXITS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=Path("outputs/curves"), help="make curves run")
    parser.add_argument("--data", type=Path, default=Path("data/synthetic-split1"))
    parser.add_argument("--seed", type=int, default=1, help="generator seed of the second split")
    parser.add_argument(
        "--videos-per-class",
        type=int,
        nargs=2,
        default=SyntheticConfig().videos_per_class[1:],
        metavar=("VAL", "TEST"),
    )
    parser.add_argument("--synthetic", default="", help="further dkp-synthetic options")
    parser.add_argument("--out", type=Path, default=None, help="default: RUNS/second-split")
    parser.add_argument(
        "--against",
        type=Path,
        default=None,
        help="sweeps to compare with (default: RUNS/sweeps, the first split); an earlier run's "
        "OUT/sweeps compares two drawn splits, e.g. two larger ones",
    )
    args = parser.parse_args(argv)
    runs = args.runs.resolve()
    out = (args.out or runs / "second-split").resolve()
    data = args.data.resolve()
    val, test = args.videos_per_class
    synthetic = [PY, "-m", "dkp.cli.synthetic", "--out", str(data), "--seed", str(args.seed)]
    synthetic += ["--videos-per-class", "0", str(val), str(test), *shlex.split(args.synthetic)]
    trained_checkpoints(runs)  # all there, or a one-line error
    run(synthetic, out / "logs" / "synthetic.log")
    against = (args.against or runs / "sweeps").resolve()
    swept = [s for s in SWEEPS if (against / s[0]).is_dir()]  # a quick run has 4 of them
    steps = evaluation_steps(runs, data, "", swept, out=out, trained=False)
    make_curves.PROGRESS.begin([s.kind for s in steps], make_curves.JOBS, make_curves.STEP_WEIGHTS)
    run_all(steps)
    first, _ = collect_points(  # seed 0's: the models scored again
        [
            run
            for sweep in sorted(against.iterdir())
            if sweep.is_dir()
            for run in seed_runs(sweep, 1)
        ]
    )
    second, _ = collect_points([out / "sweeps"])
    shifts = pair_points(first, against, second, out / "sweeps")
    write_shift_table(shifts, out / "figures", "split_shift")
    verdicts = write_verdicts(CLAIMS, series_points(second), out / "figures")
    print(f"all points: {ShiftSummary.of(shifts).line()}")
    fixed = [s for s in shifts if s.place.split("/")[0] not in EXIT_NAMES]
    print(f"fixed-cost points (the sweeps): {ShiftSummary.of(fixed).line()}")
    exits = [s for s in shifts if s.place.split("/")[0] in EXIT_NAMES]
    print(f"exit curves: {ShiftSummary.of(exits).line()}")
    equal = ShiftSummary.of(exits, equal_cost=True)
    print(f"exit curves, the second split's read at the first's GFLOPs: {equal.line()}")
    print(
        f"table: {out / 'figures' / 'split_shift.md'}; verdicts on the second split: {verdicts[-1]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
