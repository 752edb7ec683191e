"""``dkp-curves``: accuracy-vs-GFLOPs curves and tables from every results.json under DIRs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dkp.reporting.points import METRICS

EXAMPLES = """examples:
  dkp-curves multirun/eval/2026-11-21/ --out figures/
  dkp-curves outputs/curves/sweeps/* --metric top1 --title "Mini-Kinetics (val)"
  dkp-curves sweeps/teacher sweeps/dkp --split val --name val_curves
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dkp-curves",
        description="Draw accuracy-vs-GFLOPs curves (PNG + SVG) and write their tables (CSV + "
        "Markdown) from every results.json under DIRs, one curve per series; failed jobs and "
        "unusable results are listed, never fatal.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dirs", nargs="+", metavar="DIR", help="run or sweep directories")
    p.add_argument("--out", help="output directory (default: the first DIR)")
    p.add_argument("--metric", default="auto", choices=("auto", *METRICS),
                   help="y axis (auto: mAP if every point has it, else top1)")  # fmt: skip
    p.add_argument("--split", default="test", choices=("test", "val"))
    p.add_argument("--title", default="", help="figure title")
    p.add_argument("--name", default="curves", help="file name of figures and tables")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Exit code 1 if there was nothing to plot."""
    args = parser().parse_args(argv)
    from dkp.reporting.curves import draw_curves

    out = args.out or args.dirs[0]
    report = draw_curves(args.dirs, out, args.metric, args.split, args.title, args.name)
    for title, items in (("failed job(s)", report.failed), ("skipped result(s)", report.skipped)):
        if items:
            print(f"{len(items)} {title}:")
            print("".join(f"  {path}: {why}\n" for path, why in items), end="")
    if not report.points:
        print(f"no results.json with usable results under {', '.join(args.dirs)}", file=sys.stderr)
        return 1
    series = sorted({p.series for p in report.points})
    print(f"{len(report.points)} point(s) in {len(series)} series: {', '.join(series)}")
    print("written: " + ", ".join(map(str, report.files)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
