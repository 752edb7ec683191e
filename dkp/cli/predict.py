"""``dkp-predict``: classify your own video files with a trained checkpoint."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

EXAMPLES = """examples:
  dkp-predict --ckpt outputs/dkp/DATE/TIME/checkpoints/last.ckpt video.mp4 other.mkv
  dkp-predict --ckpt last.ckpt video.mp4 --top-k 3 --json predictions.json --plot video.png
  dkp-predict --ckpt last.ckpt videos/*.mp4 --strategy fixed --r-t 4 --csv predictions.csv

streaming (a prediction as frames arrive; see docs/deployment.md):
  dkp-predict --ckpt dkp.ckpt --stream video.mp4 --realtime --window 8
  ffmpeg -i rtsp://camera/live -f mpegts - | dkp-predict --ckpt dkp.ckpt --stream pipe:
  dkp-predict --ckpt early_exit.ckpt --stream /dev/video0 --threshold 0.8
  dkp-predict --ckpt dkp.ckpt --stream rtsp://camera/live --option rtsp_transport=tcp
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dkp-predict",
        description="Classify video files with a dkp checkpoint: prints each video's top-k "
        "classes (a video that cannot be decoded is reported and skipped). Frames are sampled "
        "as in training unless the sampling options say otherwise. With --stream, reads a "
        "live source instead and prints a prediction whenever one is ready, with the GFLOPs "
        "spent so far and its latency.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("videos", nargs="*", type=Path, help="video files to classify")
    p.add_argument("--ckpt", required=True, type=Path, help="a dkp checkpoint (.ckpt)")
    p.add_argument("--top-k", type=int, default=5, help="classes shown per video (default: 5)")
    out = p.add_argument_group("outputs")
    out.add_argument("--json", type=Path, help="write predictions with per-frame probabilities")
    out.add_argument("--csv", type=Path, help="write top-k classes and GFLOPs per video")
    out.add_argument("--plot", type=Path, help="a .png (one video) or a folder: frames and "
                     "per-frame probabilities (student vs ensemble for DKP)")  # fmt: skip
    out.add_argument("--label", help="class whose probability --plot draws (default: the true "
                     "class if --annotations know the video, else the top-1)")  # fmt: skip
    out.add_argument("--annotations", type=Path, help="an ActivityNet-format JSON: --plot shades "
                     "each video's ground-truth action and draws its true class")  # fmt: skip
    sampling = p.add_argument_group("sampling (default: the checkpoint's training sampling)")
    sampling.add_argument("--strategy", choices=["adaptive", "fixed"])
    sampling.add_argument("--n-s", type=int, help="student frames per video (adaptive)")
    sampling.add_argument("--n-t", type=int, help="teacher frames per video (adaptive)")
    sampling.add_argument("--r-s", type=float, help="seconds between student frames (fixed)")
    sampling.add_argument("--r-t", type=float, help="seconds between teacher frames (fixed)")
    live = p.add_argument_group("streaming")
    live.add_argument("--stream", metavar="SOURCE", help="a live source instead of files: a "
                      "file, pipe: (stdin), pipe:N, a fifo, an rtsp:// or http:// URL, a "
                      "/dev/video* device")  # fmt: skip
    live.add_argument("--window", type=float, default=8.0, help="seconds a prediction "
                      "covers (default: 8), sampled as a video that long")  # fmt: skip
    live.add_argument("--realtime", action="store_true", help="play a file at its own pace")
    live.add_argument("--threshold", type=float, help="early exit: stop a window at the first "
                      "checkpoint this sure (default: the checkpoint's thresholds)")  # fmt: skip
    live.add_argument("--format", dest="stream_format", help="the source's demuxer where it "
                      "does not say (v4l2, mpegts, ...)")  # fmt: skip
    live.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                      help="an FFmpeg option for the source (repeatable)")  # fmt: skip
    live.add_argument("--max-updates", type=int, help="stop after this many predictions")
    p.add_argument("--threads", type=int, default=1, help="decoder threads (default: 1)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if bool(args.videos) == bool(args.stream):
        p.error("give video files or --stream SOURCE (one of the two)")
    options = dict(o.split("=", 1) for o in args.option if "=" in o)
    if len(options) != len(args.option):
        p.error("--option: expected KEY=VALUE")
    sampling = {"strategy": args.strategy, "n_s": args.n_s, "n_t": args.n_t}
    sampling |= {"r_s": args.r_s, "r_t": args.r_t}
    if args.stream:
        from dkp.data.decoding import VideoDecodeError
        from dkp.tasks.stream import stream

        try:
            return stream(args.ckpt, args.stream, args.window, sampling, args.threshold,
                          args.top_k, args.realtime, args.stream_format, options,
                          args.threads, args.max_updates)  # fmt: skip
        except ValueError as err:
            print(f"dkp-predict: error: {err}", file=sys.stderr)
            return 2
        except VideoDecodeError as err:
            print(f"dkp-predict: {err}", file=sys.stderr)
            return 1
    from dkp.tasks.predict import predict

    try:
        return predict(
            args.ckpt,
            args.videos,
            top_k=args.top_k,
            json_path=args.json,
            csv_path=args.csv,
            plot=args.plot,
            label=args.label,
            annotations=args.annotations,
            sampling=sampling,
            threads=args.threads,
        )
    except ValueError as err:
        print(f"dkp-predict: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
