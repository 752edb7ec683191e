"""``dkp-activitynet``: score an ActivityNet submission.json as the official evaluation does."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

EXAMPLES = """examples:
  dkp-activitynet score outputs/eval/DATE/TIME/submission.json activity_net.v1-3.min.json
  dkp-activitynet score submission.json activity_net.v1-3.min.json --top-k 1 --json
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dkp-activitynet",
        description="Score an ActivityNet classification submission as the official code does "
        "(interpolated mAP, hit@k), next to dkp's non-interpolated mAP.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    score = commands.add_parser("score", help="interpolated mAP and hit@k of a submission")
    score.add_argument("submission", type=Path)
    score.add_argument("ground_truth", type=Path, help="activity_net.v1-3.min.json")
    score.add_argument("--subset", default="validation")
    score.add_argument("--top-k", type=int, default=3)
    score.add_argument("--json", action="store_true", help="print the scores as JSON")
    args = parser.parse_args(argv)
    from dkp.data.annotations.records import AnnotationError
    from dkp.evaluation.activitynet_submission import score_submission

    try:
        result = score_submission(args.submission, args.ground_truth, args.subset, args.top_k)
    except (AnnotationError, OSError) as err:
        print(f"dkp-activitynet: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(asdict(result), indent=2))
        return 0
    print(
        f"videos: {result.num_videos} ({args.subset}), classes: {result.num_classes}, "
        f"submitted: {result.num_submitted}"
    )
    print(f"interpolated mAP (official): {100 * result.interpolated_map:.2f}")
    print(f"hit@{result.k} (official): {100 * result.hit_at_k:.2f}")
    print(
        f"non-interpolated mAP (ours, over submitted scores): "
        f"{100 * result.non_interpolated_map:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
