"""Training: fit a model from a composed config, test its best checkpoint, report the results."""

from __future__ import annotations

import logging
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor

from dkp.data.datamodule import VideoDataModule
from dkp.lightning.base import VideoModule
from dkp.lightning.checkpoint import require_kind
from dkp.lightning.last_checkpoint import LastCheckpoint
from dkp.runtime.checks import check_config
from dkp.runtime.config import build_group, build_object
from dkp.runtime.results import Results, cost_of
from dkp.runtime.threads import set_torch_threads

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[VideoDataModule, VideoModule, pl.Trainer]:
    """Datamodule, model and trainer from a composed config (no training yet)."""
    datamodule = build_object(cfg.data)
    model = build_object(cfg.model)
    datamodule.adapt_to(model)
    trainer = build_trainer(cfg)
    return datamodule, model, trainer


def build_trainer(cfg: DictConfig) -> pl.Trainer:
    """The trainer with the config's callbacks and loggers (a learning-rate monitor only
    where there is a logger to write to: ``logger=none`` alone must not fail)."""
    loggers = build_group(cfg.get("logger"))
    callbacks = build_group(cfg.get("callbacks"))
    if not loggers:
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    return build_object(cfg.trainer, callbacks=callbacks, logger=loggers or False)


def last_checkpoint(trainer: pl.Trainer) -> str:
    """The run's ``last.ckpt`` ("" if none was written). Read from disk: under ddp_spawn the
    callbacks of this process never saw the training."""
    paths = [c.path for c in trainer.checkpoint_callbacks if isinstance(c, LastCheckpoint)]
    return next((str(p) for p in paths if p.is_file()), "")


def scored_results(
    cfg: DictConfig, model: VideoModule, split: str, logged: dict[str, Any], **fields: Any
) -> Results:
    """The :class:`Results` of ``model`` after it scored ``split``: the metrics it logged, the
    cost of what ran on each scored video, and the setting (``cfg.sampling`` for the streams
    the model reads)."""
    metrics, cost, num_videos = cost_of(logged, split)
    sampling = OmegaConf.to_container(cfg.sampling, resolve=True)
    sampling.pop("_target_", None)
    sampling["networks"] = list(model.networks)
    return Results(
        metrics=metrics,
        cost=cost,
        task=cfg.get("task_name") or "",
        kind=model.kind,
        networks=list(model.networks),
        split=split,
        num_videos=num_videos,
        sampling=sampling,
        series=cfg.get("series"),
        skipped_videos=model.skipped_videos,
        **fields,
    )


def train(cfg: DictConfig) -> Results:
    """Fit (resuming from ``ckpt_path`` if set), test the best checkpoint; return the results."""
    check_config(cfg)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule, model, trainer = build(cfg)
    set_torch_threads(cfg.get("torch_threads"), trainer, datamodule.num_workers)
    resume = cfg.get("ckpt_path")
    if resume:  # refused here, naming the file, if unsafe, unreadable or another model's
        require_kind(resume, model.kind, "It resumes a run of the same model.", "ckpt_path")
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    metrics = dict(trainer.callback_metrics)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    split = "test" if cfg.get("test") and "test" in datamodule.splits else "val"
    if split == "test":
        tested = trainer.test(
            model, datamodule=datamodule, ckpt_path=best or None, weights_only=True
        )
        metrics.update(tested[0] if tested else {})
    return scored_results(
        cfg, model, split, metrics, best_checkpoint=best, last_checkpoint=last_checkpoint(trainer)
    )
