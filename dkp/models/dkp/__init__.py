"""The DKP network (Kim et al., ICCV 2021): student and teacher frame networks, the
propagation block between them, the dynamic ensemble, and dynamic DKP (early exit)."""

from dkp.models.dkp.dynamic import dynamic_dkp_inference
from dkp.models.dkp.ensemble import DynamicEnsemble, EnsembleOutput
from dkp.models.dkp.net import DKPFusion, DKPNet, DKPOutput, normalized_times, video_logits
from dkp.models.dkp.propagation import PropagationBlock

__all__ = [
    "DKPFusion",
    "DKPNet",
    "DKPOutput",
    "DynamicEnsemble",
    "EnsembleOutput",
    "PropagationBlock",
    "dynamic_dkp_inference",
    "normalized_times",
    "video_logits",
]
