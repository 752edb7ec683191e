"""LightningModules (training and evaluation of each model), and loading any dkp checkpoint
by the kind it records: a registry whose call contract is `load_module(path) -> module`."""

from __future__ import annotations

import os

from dkp.lightning.base import VideoModule
from dkp.lightning.checkpoint import CheckpointError, checkpoint_kind, read_checkpoint
from dkp.lightning.dkp import DKPModule
from dkp.lightning.early_exit import EarlyExitModule
from dkp.lightning.frame_classifier import FrameClassifierModule

MODULES: dict[str, type[VideoModule]] = {
    FrameClassifierModule.kind: FrameClassifierModule,
    DKPModule.kind: DKPModule,
    EarlyExitModule.kind: EarlyExitModule,
}


def load_module(
    path: str | os.PathLike[str], map_location: str = "cpu", field: str = ""
) -> VideoModule:
    """Rebuild any dkp module from its checkpoint alone (read with ``weights_only=True``),
    in eval mode, ready for inference. Errors name ``field`` (the config field that gave
    the path, if any) and the file."""
    where = f"{field}: " if field else ""
    kind = checkpoint_kind(read_checkpoint(path, field))
    if kind not in MODULES:
        raise CheckpointError(
            f"{where}{path} records module kind {kind!r}; dkp knows {', '.join(sorted(MODULES))}"
        )
    try:
        module = MODULES[kind].load_from_checkpoint(
            path, map_location=map_location, weights_only=True
        )
    except (RuntimeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{where}{path}: cannot rebuild the {kind} module: {err}") from err
    return module.eval()


__all__ = [
    "MODULES",
    "DKPModule",
    "EarlyExitModule",
    "FrameClassifierModule",
    "VideoModule",
    "load_module",
]
