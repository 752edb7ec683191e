"""The training summary states the cost in GFLOPs (GMACs), not Lightning's "Total Flops 0"."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytorch_lightning as pl

from dkp.data.sampling import build_sampling
from dkp.lightning import FrameClassifierModule
from dkp.lightning.summary import VideoModelSummary, cost_lines
from tests.lightning.test_checkpoints import frame_net


def test_cost_lines_per_frame_and_per_video():
    module = FrameClassifierModule(frame_net(), role="teacher", input_size=16)
    frame = module.cost_model().teacher_frame
    sampling = build_sampling("adaptive", n_t=4, networks=["teacher"])
    trainer = SimpleNamespace(datamodule=SimpleNamespace(sampling=sampling))
    assert cost_lines(module, trainer) == [
        f"{frame:<10.4g}GFLOPs (GMACs) per teacher frame",
        f"{4 * frame:<10.4g}GFLOPs (GMACs) per video at n_s=0, n_t=4",
    ]
    fixed = build_sampling("fixed", r_t=4.0, networks=["teacher"])  # counts vary per video
    assert len(cost_lines(module, SimpleNamespace(datamodule=SimpleNamespace(sampling=fixed)))) == 1


def test_the_summary_ends_with_the_cost(caplog):
    module = FrameClassifierModule(frame_net(), role="student", input_size=16)
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with caplog.at_level(logging.INFO, logger="dkp.lightning.summary"):
        VideoModelSummary().on_fit_start(trainer, module)
    text = caplog.text
    assert "GFLOPs (GMACs) per student frame" in text and "Total Flops" not in text
    assert "Trainable params" in text
    caplog.clear()
    VideoModelSummary(enabled=False).on_fit_start(trainer, module)
    assert caplog.text == ""
