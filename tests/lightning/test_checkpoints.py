"""Checkpoints: self-contained, loaded ready for inference, and refused with a named reason."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from dkp.lightning import DKPModule, FrameClassifierModule, load_module
from dkp.lightning.checkpoint import CheckpointError
from dkp.models.backbones import build_backbone

BACKBONE = {"_target_": "dkp.models.backbones.build_backbone", "name": "resnet18",
            "base_width": 4, "layers": [1, 1, 1, 1]}  # fmt: skip


def frame_net(weights: str | None = None, classes: int = 3) -> dict:
    backbone = {**BACKBONE, "weights": weights}
    return {"_target_": "dkp.models.frame_net.FrameNet", "num_classes": classes,
            "dropout": 0.5, "backbone": backbone}  # fmt: skip


def save(module: pl.LightningModule, path) -> str:
    """A checkpoint as Lightning writes it (weights and hyper-parameters)."""
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": pl.__version__,
        },
        path,
    )
    return str(path)


def test_a_checkpoint_needs_no_file_but_itself(tmp_path):
    """Weights from a local ImageNet-style file become the module's state: the checkpoint
    loads after the file is gone, with the same weights."""
    weights = tmp_path / "resnet18.pth"
    torch.manual_seed(1)
    torch.save(build_backbone(**{k: v for k, v in BACKBONE.items() if k != "_target_"})
               .state_dict(), weights)  # fmt: skip
    teacher = FrameClassifierModule(frame_net(str(weights)), role="teacher", input_size=16)
    assert teacher.hparams["net"]["backbone"]["weights"] is None
    path = save(teacher, tmp_path / "teacher.ckpt")
    weights.unlink()
    loaded = load_module(path)
    for key, value in teacher.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    dkp = DKPModule(frame_net(), frame_net(), 8, 16, teacher_ckpt=path, propagation={"dim": 8})
    assert dkp.hparams["teacher"]["backbone"]["weights"] is None
    assert isinstance(load_module(save(dkp, tmp_path / "dkp.ckpt")), DKPModule)


def test_loaded_for_inference_in_eval_mode(tmp_path):
    path = save(FrameClassifierModule(frame_net(), role="student", input_size=16), tmp_path / "s")
    module = load_module(path)
    assert not module.training and not any(m.training for m in module.modules())
    frames = torch.randint(0, 256, (2, 3, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():  # dropout 0.5 is off: the same input gives the same output
        torch.testing.assert_close(module.net(frames).logits, module.net(frames).logits)


def test_a_checkpoint_of_the_other_role_is_refused_unless_asked_for(tmp_path):
    student = save(FrameClassifierModule(frame_net(), role="student", input_size=8), tmp_path / "s")
    with pytest.raises(CheckpointError, match="model.teacher_ckpt: .* trained as the student"):
        DKPModule(frame_net(), frame_net(), 8, 16, teacher_ckpt=student)
    DKPModule(frame_net(), frame_net(), 8, 16, teacher_ckpt=student, cross_role=True)


def test_what_is_not_a_checkpoint_is_named_in_one_line(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# not a checkpoint\n")
    with pytest.raises(CheckpointError) as err:
        load_module(readme, field="ckpt_path")
    assert (
        str(err.value) == f"ckpt_path: {readme} is not a checkpoint (not a file torch.save wrote)"
    )
    with pytest.raises(CheckpointError, match=r"^model.teacher_ckpt: checkpoint not found: .*no"):
        DKPModule(frame_net(), frame_net(), 8, 16, teacher_ckpt=str(tmp_path / "no.ckpt"))
