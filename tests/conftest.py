"""Shared fixtures: a tiny embedded dataset and Hydra configs composed as the CLI does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from dkp.data.synthetic import SyntheticConfig, generate
from dkp.runtime.config import CONFIG_DIR

# The 8 fine-detail and brief-event classes, 2 train / 1 val / 1 test video each.
TINY_DATASET = SyntheticConfig(
    coarse_classes=0,
    videos_per_class=(2, 1, 1),
    min_duration=2.0,
    max_duration=8.0,
    multi_label_fraction=0.0,
    event_duration=0.5,
    event_spacing=1.0,
)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-video synthetic ActivityNet dataset; returns its root."""
    root = tmp_path_factory.mktemp("tiny_dataset")
    generate(root, TINY_DATASET, workers=1)
    return root


@pytest.fixture(scope="session")
def odd_dataset(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny_dataset with 7 validation and 7 test videos: shards of 4 and 3 on 2 processes."""
    root = tmp_path_factory.mktemp("odd") / "data"
    shutil.copytree(tiny_dataset, root)
    ann = json.loads((root / "activity_net.v1-3.min.json").read_text())["database"]
    for subset in ("validation", "testing"):
        video_id = sorted(v for v, e in ann.items() if e["subset"] == subset)[0]
        (root / "videos" / f"v_{video_id}.mp4").unlink()
    return root


def compose_config(
    name: str, overrides: list[str], output_dir: Path, dataset: Path | None = None
) -> DictConfig:
    """Compose ``conf/<name>.yaml`` with overrides, as ``dkp-train``/``dkp-eval`` would."""
    fast = ["data.num_workers=0", "data.persistent_workers=false"]
    if name != "exits":  # the only config without a trainer
        fast += ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    if dataset is not None:
        fast += [f"data.root={dataset}", "data.prepare=null"]
        fast.append(f"data.num_classes={TINY_DATASET.num_classes}")  # the tiny dataset's
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONFIG_DIR):
        cfg = compose(name, overrides=fast + overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir)
        cfg.paths.cache_dir = str(output_dir / ".cache")
    return cfg


#: A few steps of training with validation and no test: what tests of a whole run need.
SHORT_FIT = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "data.batch_size=4",
    "data.eval_batch_size=8",
    "sampling.n_t=2",
    "sampling.ratio=2",
    "test=false",
    "logger=none",
    "~callbacks.lr_monitor",
]
DKP_FROM_SCRATCH = ["experiment=dkp", "model.teacher_ckpt=null", "model.freeze_teacher=false"]


def val_loader(module, dataset: Path, tmp_path: Path):
    """The validation loader of the tiny dataset, adapted to ``module``'s input sizes."""
    from dkp.runtime.config import build_object

    cfg = compose_config("eval", ["ckpt_path=x.ckpt", "sampling.n_t=2"], tmp_path / "v", dataset)
    datamodule = build_object(cfg.data)
    datamodule.adapt_to(module)
    datamodule.setup("validate")
    return datamodule.val_dataloader()
