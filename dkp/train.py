"""Training entry point: ``dkp-train`` / ``python -m dkp.train`` (Hydra; see conf/train.yaml)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from dkp.cpu_threads import set_torch_threads
from dkp.evaluation.cost import cost_summary
from dkp.jobs import run_job
from dkp.last_checkpoint import LastCheckpoint
from dkp.modules.base import VideoModule
from dkp.modules.checkpoint import require_kind

log = logging.getLogger(__name__)
CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def build_object(node: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate``, re-raising our own config errors as themselves.

    Hydra wraps every error raised by a target in ``InstantiationException``; a wrong
    config value should reach the user as the ValueError (or missing-file error) that
    names the field, not as a wrapper around it.
    """
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while isinstance(cause, InstantiationException):  # nested targets wrap it again
            cause = cause.__cause__
        if isinstance(cause, (ValueError, FileNotFoundError)):
            raise cause from None
        raise


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a dict-of-configs group (callbacks, loggers)."""
    if not group:
        return []
    return [build_object(node) for node in group.values() if node and "_target_" in node]


def check_streams(model: VideoModule, datamodule: Any) -> None:
    """The sampling must provide every stream the model reads, at the model's input size, and
    the model must predict the data's classes."""
    for name in model.networks:
        if getattr(datamodule.sampling, name) is None:
            raise ValueError(
                f"sampling.networks: the model reads the {name} stream; add {name!r} to it"
            )
    for name, size in model.input_sizes.items():
        setattr(datamodule, f"{name}_size", size)
    if model.num_classes not in (None, datamodule.num_classes):
        raise ValueError(
            f"data.num_classes: the data has {datamodule.num_classes} classes but the model "
            f"predicts {model.num_classes}"
        )


def build(cfg: DictConfig) -> tuple[Any, VideoModule, pl.Trainer]:
    """Datamodule, model and trainer from a composed config (no training yet)."""
    datamodule = build_object(cfg.data)
    model = build_object(cfg.model)
    check_streams(model, datamodule)
    loggers = instantiate_group(cfg.get("logger"))
    trainer = build_object(
        cfg.trainer, callbacks=instantiate_group(cfg.get("callbacks")), logger=loggers or False
    )
    return datamodule, model, trainer


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if getattr(v, "numel", lambda: 1)() == 1}


def last_checkpoint(trainer: pl.Trainer) -> str:
    """The run's ``last.ckpt`` ("" if none was written). Read from disk: under ddp_spawn the
    callbacks of this process never saw the training."""
    paths = [c.path for c in trainer.checkpoint_callbacks if isinstance(c, LastCheckpoint)]
    return next((str(p) for p in paths if p.is_file()), "")


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit (resuming from ``ckpt_path`` if set), test the best checkpoint; return the results."""
    pl.seed_everything(cfg.seed, workers=True)
    datamodule, model, trainer = build(cfg)
    set_torch_threads(cfg.get("torch_threads"), trainer, datamodule.num_workers)
    resume = cfg.get("ckpt_path")
    if resume:  # refused here, naming the file, if unsafe, unreadable or another model's
        require_kind(resume, model.kind, "ckpt_path resumes a run of the same model.")
    trainer.fit(model, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    metrics = scalar_metrics(trainer.callback_metrics)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if cfg.get("test") and "test" in datamodule.splits:
        tested = trainer.test(
            model, datamodule=datamodule, ckpt_path=best or None, weights_only=True
        )
        metrics.update(scalar_metrics(tested[0] if tested else {}))
    split = "test" if cfg.get("test") and "test" in datamodule.splits else "val"
    records = datamodule.dataset(split).records  # loaded here too under ddp_spawn
    results = {
        "task": cfg.get("task_name"),
        "kind": model.kind,
        "networks": list(model.networks),
        "sampling": OmegaConf.to_container(cfg.sampling, resolve=True),
        "metrics": metrics,
        "cost": cost_summary(model, records, datamodule.sampling),
        "cost_split": split,
        "series": cfg.get("series"),
        "skipped_videos": model.skipped_videos,
        "best_checkpoint": best,
        "last_checkpoint": last_checkpoint(trainer),
    }
    return results


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> None:
    run_job(cfg, train)


if __name__ == "__main__":
    main()
