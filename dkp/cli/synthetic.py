"""``dkp-synthetic``: write the embedded synthetic dataset (what ``make curves`` trains on)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from dkp.data.synthetic.config import SyntheticConfig

EXAMPLES = """examples:
  dkp-synthetic --out data/synthetic
  dkp-synthetic --out data/small --videos-per-class 8 2 4 --seed 7
  dkp-synthetic --out data/synthetic --force --workers 4
  dkp-synthetic --out data/synthetic-frequent --event-spacing 2   # more flashes: an easier set
"""


def parser() -> argparse.ArgumentParser:
    d = SyntheticConfig()
    p = argparse.ArgumentParser(
        prog="dkp-synthetic",
        description="Write the embedded synthetic dataset in ActivityNet-v1.3 format (H.264 "
        "videos, activity_net.v1-3.min.json, manifest.json), deterministically from a seed. A "
        "folder that already holds this dataset is left as it is; one that holds anything else "
        "(another dataset, other parameters) is refused, naming what differs, unless --force.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument(
        "--videos-per-class",
        type=int,
        nargs=3,
        metavar=("TRAIN", "VAL", "TEST"),
        default=list(d.videos_per_class),
        help="videos per class in each subset (default: %(default)s)",
    )
    p.add_argument("--fine-classes", type=int, default=d.fine_classes)
    p.add_argument("--brief-classes", type=int, default=d.brief_classes)
    p.add_argument("--coarse-classes", type=int, default=d.coarse_classes)
    p.add_argument("--width", type=int, default=d.width)
    p.add_argument("--height", type=int, default=d.height)
    p.add_argument("--fps", type=int, default=d.fps)
    p.add_argument("--min-duration", type=float, default=d.min_duration)
    p.add_argument("--max-duration", type=float, default=d.max_duration)
    p.add_argument("--multi-label-fraction", type=float, default=d.multi_label_fraction)
    p.add_argument(
        "--event-spacing",
        type=float,
        default=d.event_spacing,
        help="mean seconds of action per brief event: larger is rarer flashes, a harder "
        "benchmark for sparse frames (default: %(default)s)",
    )
    p.add_argument("--event-duration", type=float, default=d.event_duration)
    p.add_argument("--crf", type=int, default=d.crf)
    p.add_argument("--workers", type=int, default=2, help="encoding processes (default: 2)")
    p.add_argument(
        "--force",
        action="store_true",
        help="write the dataset even over what the folder holds (its videos are deleted)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = SyntheticConfig(
        seed=args.seed,
        width=args.width,
        height=args.height,
        fps=args.fps,
        fine_classes=args.fine_classes,
        brief_classes=args.brief_classes,
        coarse_classes=args.coarse_classes,
        videos_per_class=tuple(args.videos_per_class),
        min_duration=args.min_duration,
        max_duration=args.max_duration,
        multi_label_fraction=args.multi_label_fraction,
        event_spacing=args.event_spacing,
        event_duration=args.event_duration,
        crf=args.crf,
    )
    try:
        config.validate()
    except ValueError as err:
        print(f"dkp-synthetic: error: {err}", file=sys.stderr)
        return 2
    from dkp.data.synthetic.writer import ensure_dataset

    started = time.perf_counter()
    try:
        path = ensure_dataset(args.out, config, args.workers, force=args.force)
    except FileExistsError as err:
        print(f"dkp-synthetic: error: {err}", file=sys.stderr)
        return 2
    print(f"{path} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
