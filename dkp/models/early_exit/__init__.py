"""Dynamic inference (Wu et al., CVPRW 2020): early exits on a frames x depth grid."""

from dkp.models.early_exit.grid import Checkpoint, Grid, frame_permutation, parse_route
from dkp.models.early_exit.network import EarlyExitNet
from dkp.models.early_exit.policy import ExitOutput, ExitPolicy
from dkp.models.early_exit.progressive import ProgressiveRun, progressive_inference
from dkp.models.early_exit.shift import online_shift
from dkp.models.early_exit.stages import ResNetStages, staged

__all__ = [
    "Checkpoint",
    "EarlyExitNet",
    "ExitOutput",
    "ExitPolicy",
    "Grid",
    "ProgressiveRun",
    "ResNetStages",
    "frame_permutation",
    "online_shift",
    "parse_route",
    "progressive_inference",
    "staged",
]
