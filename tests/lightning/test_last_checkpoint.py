"""last.ckpt: one file, always the latest weights, beside the best-checkpoint callback."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset
from typing_extensions import override

from dkp.lightning.last_checkpoint import LastCheckpoint


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)

    @override
    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    @override
    def validation_step(self, batch, batch_idx):
        self.log("val/score", -self.layer(batch[0]).pow(2).mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader(n: int = 10) -> DataLoader:
    return DataLoader(TensorDataset(torch.randn(n, 2)), batch_size=1)


def fit(tmp_path, every: int, validate: bool = True, **trainer) -> pl.Trainer:
    best = ModelCheckpoint(dirpath=tmp_path, monitor="val/score", mode="max", save_top_k=1)
    last = LastCheckpoint(str(tmp_path), every_n_train_steps=every)
    t = pl.Trainer(
        callbacks=[best, last], logger=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, **trainer,
    )  # fmt: skip
    t.fit(Tiny(), loader(), loader(2) if validate else None)
    return t


def saved_step(path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


@pytest.mark.parametrize("every", [0, 3, 1])
@pytest.mark.parametrize("validate", [True, False])
def test_last_ckpt_holds_the_final_weights_and_is_the_only_one(tmp_path, every, validate):
    trainer = fit(tmp_path, every, validate, max_epochs=2)
    lasts = sorted(p.name for p in tmp_path.glob("last*.ckpt"))
    assert lasts == ["last.ckpt"]  # never last-v1.ckpt beside it
    assert trainer.checkpoint_callbacks[1].path == tmp_path / "last.ckpt"
    assert saved_step(tmp_path / "last.ckpt") == trainer.global_step == 20
    final = trainer.lightning_module.layer.weight
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)["state_dict"]["layer.weight"]
    torch.testing.assert_close(saved, final, rtol=0, atol=0)


def test_a_run_stopped_mid_epoch_saves_where_it_stopped(tmp_path):
    trainer = fit(tmp_path, every=4, max_steps=7)
    assert saved_step(tmp_path / "last.ckpt") == trainer.global_step == 7


def test_negative_interval_is_refused():
    with pytest.raises(ValueError, match="every_n_train_steps: -1"):
        LastCheckpoint("x", every_n_train_steps=-1)
