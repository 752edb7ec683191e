"""Load locally saved weights (torchvision state_dicts, Lightning checkpoints) into a module.

Files are read with ``weights_only=True``: tensors and plain containers only, never pickled code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn


class WeightsLoadError(ValueError):
    """A weights file could not be read or does not fit the module; the message names the file."""


def _read_state_dict(path: Path) -> Mapping[str, object]:
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # weights_only refusals surface as UnpicklingError/RuntimeError
        raise WeightsLoadError(
            f"cannot load weights file {path} (read with weights_only=True, so files holding "
            f"anything beyond tensors and plain containers are refused): {err}"
        ) from err
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise WeightsLoadError(
            f"weights file {path} holds a {type(obj).__name__}, not a state_dict"
        )
    return obj


def _select(
    state: Mapping[str, object], path: Path, key_prefix: str | None, ignore: Sequence[str]
) -> dict[str, Tensor]:
    if key_prefix:
        selected = {k[len(key_prefix) :]: v for k, v in state.items() if k.startswith(key_prefix)}
        if not selected:
            sample = ", ".join(list(state)[:5])
            raise WeightsLoadError(
                f"no key in weights file {path} starts with {key_prefix!r} (keys start: {sample})"
            )
        state = selected
    return {
        k: v
        for k, v in state.items()
        if isinstance(v, Tensor) and not any(k.startswith(p) for p in ignore)
    }


def load_state_dict_file(
    module: nn.Module,
    path: str | os.PathLike[str],
    *,
    strict: bool = True,
    ignore_prefixes: Sequence[str] = ("fc.", "classifier."),
    key_prefix: str | None = None,
) -> tuple[list[str], list[str]]:
    """Load a local state_dict file into ``module`` and return its (missing, unexpected) keys.

    Accepts a raw state_dict or a checkpoint with a ``state_dict`` entry; ``key_prefix`` keeps only
    keys under that prefix and strips it, then keys under ``ignore_prefixes`` (the classifier of a
    torchvision model) are dropped. Shape mismatches always raise; missing or unexpected keys raise
    when ``strict``. Raises FileNotFoundError or WeightsLoadError, both naming the file.
    """
    path = Path(path)
    state = _select(_read_state_dict(path), path, key_prefix, tuple(ignore_prefixes))
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"  {k}: module {tuple(own[k].shape)}, file {tuple(v.shape)}"
        for k, v in state.items()
        if k in own and own[k].shape != v.shape
    ]
    problems = []
    if mismatched:
        problems.append("shape mismatches:\n" + "\n".join(mismatched))
    if strict and missing:
        problems.append("missing keys: " + ", ".join(missing))
    if strict and unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected))
    if problems:
        raise WeightsLoadError(
            f"weights file {path} does not fit {type(module).__name__}:\n" + "\n".join(problems)
        )
    module.load_state_dict(state, strict=False)
    return missing, unexpected
