"""Evaluation entry point: ``dkp-eval ckpt_path=PATH`` / ``python -m dkp.eval`` (conf/eval.yaml).

The model comes from the checkpoint alone; the data and the sampling (strategy, n_s, n_t,
r_s, r_t) come from the config, so one trained checkpoint can be scored under many
sampling settings. Writes ``results.json`` in the run directory.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from dkp.cpu_threads import set_torch_threads
from dkp.evaluation.cost import cost_summary
from dkp.jobs import run_job
from dkp.modules import load_module
from dkp.train import CONFIG_DIR, build_object, check_streams, instantiate_group, scalar_metrics

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score ``cfg.ckpt_path`` on ``cfg.split``; return the results (metrics, cost, sampling)."""
    if cfg.split not in ("val", "test"):
        raise ValueError(f"split: {cfg.split!r} is not 'val' or 'test'")
    pl.seed_everything(cfg.seed, workers=True)
    model = load_module(cfg.ckpt_path)
    sampling_cfg = OmegaConf.to_container(cfg.sampling, resolve=True)
    sampling_cfg["networks"] = list(model.networks)
    datamodule = build_object(cfg.data, sampling=sampling_cfg)
    check_streams(model, datamodule)
    trainer = build_object(
        cfg.trainer,
        callbacks=instantiate_group(cfg.get("callbacks")),
        logger=instantiate_group(cfg.get("logger")) or False,
    )
    set_torch_threads(cfg.get("torch_threads"), trainer, datamodule.num_workers)
    run = trainer.validate if cfg.split == "val" else trainer.test
    scored = run(model, datamodule=datamodule, verbose=True)
    records = datamodule.dataset(cfg.split).records  # loaded here too under ddp_spawn
    results = {
        "task": cfg.get("task_name"),
        "kind": model.kind,
        "networks": list(model.networks),
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
        "split": cfg.split,
        "sampling": sampling_cfg,
        "metrics": scalar_metrics(scored[0] if scored else {}),
        "cost": cost_summary(model, records, datamodule.sampling),
        "num_videos": len(records),
        "skipped_videos": model.skipped_videos,
        "series": cfg.get("series"),
    }
    return results


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def main(cfg: DictConfig) -> None:
    run_job(cfg, evaluate)


if __name__ == "__main__":
    main()
