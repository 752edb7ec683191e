"""callbacks.channels_last: NHWC weights for a whole run, the same scores, plain checkpoints."""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from typing_extensions import override

from dkp.lightning import load_module
from dkp.runtime.jobs import run_job
from dkp.tasks.train import train
from tests.conftest import DKP_FROM_SCRATCH, SHORT_FIT, compose_config, val_loader

HERE = "tests.lightning.test_channels_last"


class RecordLayout(pl.Callback):
    """Whether every 4-D weight is channels-last as training starts."""

    seen: list[bool] = []

    @override
    def on_train_start(self, trainer, pl_module) -> None:
        weights = [p for p in pl_module.parameters() if p.dim() == 4]
        RecordLayout.seen.append(
            bool(weights)
            and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
        )


def test_a_channels_last_run_trains_and_its_checkpoint_scores_the_same(tiny_dataset, tmp_path):
    RecordLayout.seen.clear()
    overrides = [*DKP_FROM_SCRATCH, *SHORT_FIT, "callbacks.channels_last.enabled=true"]
    overrides.append(f"+callbacks.layout._target_={HERE}.RecordLayout")
    cfg = compose_config("train", overrides, tmp_path, tiny_dataset)
    results = run_job(cfg, train)
    assert RecordLayout.seen == [True]
    assert math.isfinite(results.metrics["val/mAP"])

    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    plain = load_module(ckpt).eval()
    assert all(p.is_contiguous() for p in plain.parameters())
    nhwc = load_module(ckpt).eval().to(memory_format=torch.channels_last)
    batch = next(iter(val_loader(plain, tiny_dataset, tmp_path)))
    with torch.inference_mode():
        torch.testing.assert_close(nhwc.video_probs(batch), plain.video_probs(batch))


def test_channels_last_is_off_unless_asked(tiny_dataset, tmp_path):
    for name in ("train", "eval"):
        extra = ["ckpt_path=x.ckpt"] if name == "eval" else []
        cfg = compose_config(name, extra, tmp_path / name, tiny_dataset)
        assert cfg.callbacks.channels_last.enabled is False
