"""Dynamic inference (Wu et al., CVPRW 2020): early exits on a frames x depth grid."""

from dkp.models.early_exit.grid import Checkpoint, Grid, frame_permutation, parse_route
from dkp.models.early_exit.network import EarlyExitNet
from dkp.models.early_exit.progressive import (
    ExitOutput,
    ProgressiveRun,
    UnitCosts,
    as_thresholds,
    progressive_inference,
)
from dkp.models.early_exit.shift import online_shift
from dkp.models.early_exit.stages import ResNetStages, staged

__all__ = [
    "Checkpoint",
    "EarlyExitNet",
    "ExitOutput",
    "Grid",
    "ProgressiveRun",
    "ResNetStages",
    "UnitCosts",
    "as_thresholds",
    "frame_permutation",
    "online_shift",
    "parse_route",
    "progressive_inference",
    "staged",
]
