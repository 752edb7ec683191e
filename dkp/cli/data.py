"""``dkp-data``: check a real dataset's videos, and prepare a copy made for sampled reading."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

EXAMPLES = """examples:
  dkp-data check data=activitynet data.root=/datasets/activitynet --report anet-check.json
  dkp-data check data=ucf101 data.root=/datasets/ucf101 data.split=2 --workers 16
  dkp-data prepare data=activitynet data.root=/datasets/activitynet \\
      data.exclude_report=anet-check.json --out /fast/activitynet-224
  dkp-data prepare data=kinetics400 data.root=/datasets/k400 --out /fast/k400 --crf 23

then train on the copy, leaving out the broken videos:
  dkp-train experiment=teacher data=activitynet data.root=/datasets/activitynet \\
      data.exclude_report=anet-check.json data.prepared=/fast/activitynet-224

Both commands are resumable: run again, they redo only what is missing or changed.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dkp-data",
        description="Check every video a data config lists (opened, indexed and probe-decoded "
        "in parallel; a JSON report and a table name every missing, unreadable or suspicious "
        "video with its reason), or prepare a training copy: each video re-encoded once into "
        "a small H.264 rendition with short keyframe intervals, frame-exact in time, that the "
        "data configs read with data.prepared=DIR. Overrides are those of dkp-train "
        "(data=..., data.root=...). See docs/data.md.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = p.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="check every listed video; write a report")
    prepare = commands.add_parser("prepare", help="write a copy made for sampled reading")
    for sub in (check, prepare):
        sub.add_argument("overrides", nargs="*", help="config overrides: data=NAME data.root=DIR")
        sub.add_argument(
            "--workers",
            type=int,
            default=os.cpu_count() or 1,
            help="processes (default: one per core; 0: this one)",
        )
        sub.add_argument("--splits", nargs="+", help="splits to cover (default: all configured)")
        sub.add_argument("--no-progress", action="store_true", help="no progress bar")
    check.add_argument("--report", default="data-check.json", help="(default: %(default)s)")
    check.add_argument(
        "--probes", type=int, default=8, help="keyframes decoded per video, and its last frame"
    )
    prepare.add_argument("--out", required=True, help="the copy's folder")
    prepare.add_argument(
        "--short-side", type=int, default=224, help="pixels, never upscaled (default: 224)"
    )
    prepare.add_argument(
        "--gop", type=int, default=1, help="frames from one keyframe to the next (default: 1)"
    )
    prepare.add_argument(
        "--crf", type=int, default=26, help="x264 quality, lower is better (default: 26)"
    )
    prepare.add_argument("--preset", default="veryfast", help="x264 preset (default: veryfast)")
    prepare.add_argument(
        "--tune", default="fastdecode", help="x264 tune, or none (default: fastdecode)"
    )
    prepare.add_argument(
        "--force", action="store_true", help="remake a copy made with other settings"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    decoding = logging.getLogger("dkp.data.decoding")
    level = decoding.level
    decoding.setLevel(logging.ERROR)  # the report names every problem; no warning twice
    try:
        return _run(args)
    finally:
        decoding.setLevel(level)


def _run(args: argparse.Namespace) -> int:
    """The command ``args`` names, as one library call; exit code 2 on a user's error."""
    from hydra.errors import HydraException

    from dkp.data.preparation.commands import check_command, prepare_command
    from dkp.data.preparation.manifest import RenditionSettings

    common = dict(workers=max(0, args.workers), splits=args.splits, progress=not args.no_progress)
    try:
        if args.command == "check":
            print(check_command(args.overrides, args.report, probes=args.probes, **common))
        else:
            tune = None if args.tune.lower() == "none" else args.tune
            settings = RenditionSettings(args.short_side, args.gop, args.crf, args.preset, tune)
            print(prepare_command(args.overrides, args.out, settings, force=args.force, **common))
    except (ValueError, OSError, HydraException) as err:
        if os.environ.get("DKP_DEBUG"):
            raise
        print(f"dkp-data: error: {err}\n  (DKP_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
