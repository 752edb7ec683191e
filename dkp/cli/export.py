"""``dkp-export``: write a checkpoint's networks as TorchScript and ONNX for deployment."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

EXAMPLES = """examples:
  dkp-export --ckpt outputs/dkp/latest/checkpoints/last.ckpt --out deploy/dkp
  dkp-export --ckpt EARLY_EXIT.ckpt --out deploy/early_exit --format onnx --opset 18
  dkp-export --ckpt TEACHER.ckpt --out deploy/teacher --format torchscript --no-check

What is written (see docs/deployment.md): a frame classifier gives <role>.{pt,onnx}; DKP gives
student, teacher and fusion (propagation block + ensemble); early exit gives one
early_exit_step<k> per checkpoint, which takes the frames of its new groups and the state the
previous step returned, so a runtime can stop between steps. manifest.json says what each file
takes and returns. ONNX needs the export extra: pip install 'dkp[export]'.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dkp-export",
        description="Export a dkp checkpoint's networks to TorchScript (.pt) and ONNX (.onnx), "
        "batch and frame axes free, and check each file against PyTorch on generated inputs "
        "of two batch sizes and two frame counts.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ckpt", required=True, type=Path, help="a dkp checkpoint (.ckpt)")
    p.add_argument("--out", required=True, type=Path, help="folder for the files")
    p.add_argument("--format", nargs="+", default=["torchscript", "onnx"],
                   choices=["torchscript", "onnx"], help="default: both")  # fmt: skip
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17; default: 17)")
    p.add_argument("--no-check", action="store_true", help="skip running the files")
    p.add_argument("--tolerance", type=float, default=1e-4,
                   help="largest difference to PyTorch accepted (default: 1e-4)")  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Exit code 2 on a bad checkpoint or option, 1 if a file differs from PyTorch."""
    args = parser().parse_args(argv)
    from dkp.tasks.export import ExportError, export

    try:
        report = export(
            args.ckpt, args.out, args.format, args.opset, not args.no_check, args.tolerance
        )
    except (ValueError, ImportError) as err:
        print(f"dkp-export: error: {err}", file=sys.stderr)
        return 2
    except ExportError as err:
        print(f"dkp-export: {err}", file=sys.stderr)
        return 1
    for path in report.files:
        print(f"written: {path}")
    for name, errors in report.max_error.items():
        shown = ", ".join(f"{fmt} {error:.2g}" for fmt, error in errors.items())
        print(f"{name}: max difference to PyTorch {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
