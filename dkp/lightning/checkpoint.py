"""Reading Lightning checkpoints safely (``weights_only``) and telling what they hold."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, unsafe or of the wrong kind; names the file."""


#: How the files torch.save writes begin: a zip archive, or (old format) a pickle.
_TORCH_MAGIC = (b"PK\x03\x04", b"\x80")


def read_checkpoint(path: str | os.PathLike[str], field: str = "") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``: tensors and plain containers, never code.

    Errors name ``field`` (the config field that gave the path) and the file."""
    path, where = Path(path), f"{field}: " if field else ""
    if not path.is_file():
        raise CheckpointError(f"{where}checkpoint not found: {path}")
    with path.open("rb") as f:
        head = f.read(4)
    if not head.startswith(_TORCH_MAGIC):
        raise CheckpointError(f"{where}{path} is not a checkpoint (not a file torch.save wrote)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "weights_only" in str(err) or "Unsupported global" in str(err):
            reason = "it holds objects beyond tensors and plain containers, which dkp refuses "
            reason += "unread (weights_only=True)"
        raise CheckpointError(f"{where}cannot read checkpoint {path}: {reason}") from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CheckpointError(f"{where}{path} is not a Lightning checkpoint (no 'state_dict')")
    return ckpt


def checkpoint_kind(ckpt: dict[str, Any]) -> str | None:
    """The dkp module kind recorded in a checkpoint's hyper-parameters (None if not dkp's)."""
    return ckpt.get("hyper_parameters", {}).get("kind")


def require_kind(
    path: str | os.PathLike[str], kind: str, hint: str = "", field: str = ""
) -> dict[str, Any]:
    """Read ``path`` and insist that it is a dkp checkpoint of ``kind``."""
    ckpt = read_checkpoint(path, field)
    found = checkpoint_kind(ckpt)
    if found != kind:
        what = f"a {found!r} checkpoint" if found else "not a dkp checkpoint"
        where = f"{field}: " if field else ""
        message = f"{where}{path} is {what}; expected a {kind!r} checkpoint. {hint}"
        raise CheckpointError(message.strip())
    return ckpt


def substate(state_dict: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix`` with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}
