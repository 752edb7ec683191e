"""`make readme-figures`: the figures and tables of a `make curves` run into docs/.

Copies them into ``docs/figures`` and puts the claim verdicts (``verdicts.md``) into the marked
section of every document that quotes them, so no comparison in the docs is written by hand.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from dkp.reporting.markdown import replace_section

KINDS = ("*.png", "*.svg", "*.md", "*.csv")
#: Figures named for the videos a run drew (make_curves' frame figures): another run's are
#: stale, not overwritten, so they are removed.
PER_VIDEO = "frames_*.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--figures", type=Path, default=Path("outputs/curves/figures"))
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    parser.add_argument("--quote", type=Path, nargs="*", default=[Path("docs/results.md")])
    parser.add_argument(
        "--section",
        default="verdicts",
        help="the marked section to replace (another run's verdicts: another section)",
    )
    args = parser.parse_args(argv)
    verdicts = args.figures / "verdicts.md"
    if not verdicts.is_file():
        sys.exit(f"{verdicts} not found: run make curves first")
    args.out.mkdir(parents=True, exist_ok=True)
    drawn = {path.name for path in args.figures.glob(PER_VIDEO)}
    for stale in sorted(args.out.glob(PER_VIDEO)):
        if stale.name not in drawn:
            stale.unlink()
    for kind in KINDS:
        for path in sorted(args.figures.glob(kind)):
            shutil.copy(path, args.out / path.name)
    for doc in args.quote:
        replace_section(doc, args.section, verdicts.read_text())
        print(f"verdicts quoted in {doc} ({args.section})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
