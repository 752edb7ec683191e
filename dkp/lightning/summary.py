"""The model summary at the start of training, with the cost in the project's unit.

Lightning's summary ends with "Total Flops", counted on an example input this project does
not give (so it reads 0). dkp's cost is GMACs per frame and per video at the real frame
counts; this summary ends with those instead.
"""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelSummary
from pytorch_lightning.utilities.model_summary.model_summary import _format_summary_table
from typing_extensions import override

log = logging.getLogger(__name__)


class VideoModelSummary(ModelSummary):
    """Layers and parameters as Lightning lists them, then GFLOPs (GMACs) per frame of each
    stream the model reads and per video at the training sampling's counts (adaptive).
    ``enabled`` follows ``trainer.enable_model_summary`` in the configs."""

    def __init__(self, max_depth: int = 1, enabled: bool = True) -> None:
        super().__init__(max_depth)
        self.enabled = enabled

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not (self.enabled and self._max_depth and trainer.is_global_zero):
            return
        summary = self._summary(trainer, pl_module)
        table = _format_summary_table(
            summary.total_parameters,
            summary.trainable_parameters,
            summary.model_size,
            summary.total_training_modes,
            0,
            *[column for column in summary._get_summary_data() if column[0] != "FLOPs"],
        )
        lines = table.splitlines()[:-1]  # Lightning's "Total Flops" line
        log.info("\n" + "\n".join([*lines, *cost_lines(pl_module, trainer)]))


def cost_lines(module: Any, trainer: pl.Trainer) -> list[str]:
    """ "<GFLOPs>  GFLOPs (GMACs) per <stream> frame" lines, and per video where the counts are
    fixed (adaptive sampling)."""
    if not hasattr(module, "cost_model"):
        return []
    model = module.cost_model()
    lines = [
        f"{getattr(model, f'{name}_frame'):<10.4g}GFLOPs (GMACs) per {name} frame"
        for name in module.networks
    ]
    sampling = getattr(getattr(trainer, "datamodule", None), "sampling", None)
    if sampling is not None and sampling.strategy == "adaptive":
        counts = [
            s.count(1.0) if s is not None else 0 for s in (sampling.student, sampling.teacher)
        ]
        per_video = model.video(*counts)
        lines.append(
            f"{per_video:<10.4g}GFLOPs (GMACs) per video at n_s={counts[0]}, n_t={counts[1]}"
        )
    return lines
