"""Evaluation: score a checkpoint on a split under any sampling setting.

The model (and its input sizes) comes from the checkpoint alone; the data and the sampling
(strategy, n_s, n_t, r_s, r_t) come from the config, so one trained checkpoint is scored
under many sampling settings (the points of a curve). ``views`` scores each video on several
temporal clips and spatial crops (:mod:`dkp.data.views`); its results say how many, and
unless ``series`` names one, such a point gets a series of its own ("DKP adaptive-4, 2 clips
x 3 crops"), so ``dkp-curves`` draws the same model at 1 and N views as two curves.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from dkp.data.views import Views
from dkp.lightning import load_module
from dkp.reporting.points import series_label
from dkp.runtime.checks import check_config
from dkp.runtime.config import build_object
from dkp.runtime.results import Results
from dkp.runtime.threads import set_torch_threads
from dkp.tasks.train import build_trainer, scored_results


def evaluate(cfg: DictConfig) -> Results:
    """Score ``cfg.ckpt_path`` on ``cfg.split``; return the results (metrics, cost, sampling)."""
    if cfg.split not in ("val", "test"):
        raise ValueError(f"split: {cfg.split!r} is not 'val' or 'test'")
    check_config(cfg, ("sampling", "data", "trainer"))
    pl.seed_everything(cfg.seed, workers=True)
    views = Views.of(OmegaConf.to_container(cfg.views) if cfg.get("views") else None)
    model = load_module(cfg.ckpt_path, field="ckpt_path")
    sampling = OmegaConf.to_container(cfg.sampling, resolve=True)
    sampling["networks"] = list(model.networks)
    datamodule = build_object(cfg.data, sampling=sampling, views=views)
    datamodule.adapt_to(model)
    trainer = build_trainer(cfg)
    set_torch_threads(cfg.get("torch_threads"), trainer, datamodule.num_workers)
    run = trainer.validate if cfg.split == "val" else trainer.test
    scored = run(model, datamodule=datamodule, verbose=True)
    results = scored_results(
        cfg,
        model,
        cfg.split,
        scored[0] if scored else {},
        checkpoint=str(Path(cfg.ckpt_path).resolve()),
        views=views.count,
    )
    if views.count > 1 and not results.series:
        results.series = f"{series_label(results)}, {views.label}"
    return results
