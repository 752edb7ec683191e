"""Reading Lightning checkpoints safely (``weights_only``) and telling what they hold."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, unsafe or of the wrong kind; names the file."""


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``: tensors and plain containers, never code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(
            f"cannot read checkpoint {path} (loaded with weights_only=True, so anything beyond "
            f"tensors and plain containers is refused): {err}"
        ) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a Lightning checkpoint (no 'state_dict')")
    return ckpt


def checkpoint_kind(ckpt: dict[str, Any]) -> str | None:
    """The dkp module kind recorded in a checkpoint's hyper-parameters (None if not dkp's)."""
    return ckpt.get("hyper_parameters", {}).get("kind")


def require_kind(path: str | os.PathLike[str], kind: str, hint: str = "") -> dict[str, Any]:
    """Read ``path`` and insist that it is a dkp checkpoint of ``kind``."""
    ckpt = read_checkpoint(path)
    found = checkpoint_kind(ckpt)
    if found != kind:
        what = f"a {found!r} checkpoint" if found else "not a dkp checkpoint"
        raise CheckpointError(f"{path} is {what}; expected a {kind!r} checkpoint. {hint}".strip())
    return ckpt


def substate(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix`` with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
