"""dkp-export: every kind of checkpoint to TorchScript and ONNX, run with torch.jit and
onnxruntime on inputs of two batch sizes and two frame counts, matching PyTorch to 1e-4."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from dkp.cli.export import main as export_main
from dkp.data.batch import Batch
from dkp.lightning import DKPModule, EarlyExitModule, FrameClassifierModule, load_module
from dkp.models.early_exit import ExitPolicy, progressive_inference
from dkp.models.early_exit.steps import EarlyExitSteps
from dkp.tasks.export import export, runner

ort = pytest.importorskip("onnxruntime")

CLASSES, SIZE = 4, 16
CASES = ((1, 3), (3, 6))  # (videos, frames)


def backbone(name: str = "resnet18") -> dict:
    return {"_target_": "dkp.models.backbones.build_backbone", "name": name, "base_width": 4,
            "layers": [1, 1, 1, 1]}  # fmt: skip


def frame_net(name: str = "resnet18") -> dict:
    return {"_target_": "dkp.models.frame_net.FrameNet", "num_classes": CLASSES,
            "backbone": backbone(name)}  # fmt: skip


MSDNET = {"_target_": "dkp.models.backbones.build_backbone", "name": "msdnet", "n_blocks": 4,
          "base": 1, "step": 1, "stepmode": "even", "channels": 8, "growth_rate": 4,
          "gr_factor": [1, 2, 4], "bn_factor": [1, 2, 4], "stem": "cifar"}  # fmt: skip


def early_exit_net(num_frames: int, groups: int, route: list[list[int]], body: dict) -> dict:
    return {"_target_": "dkp.models.early_exit.EarlyExitNet", "num_classes": CLASSES,
            "num_frames": num_frames, "groups": groups, "route": route,
            "backbone": body}  # fmt: skip


def save(module: pl.LightningModule, path: Path) -> Path:
    torch.manual_seed(0)
    for p in module.parameters():  # away from the identity init, so every layer matters
        p.data.add_(0.05 * torch.randn_like(p))
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "pytorch-lightning_version": pl.__version__}, path)  # fmt: skip
    return path


def frames(videos: int, count: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (videos, count, 3, SIZE, SIZE), generator=g, dtype=torch.uint8)


def runners(folder: Path, name: str) -> dict[str, object]:
    return {fmt: runner(folder / f"{name}{suffix}") for fmt, suffix in
            (("torchscript", ".pt"), ("onnx", ".onnx"))}  # fmt: skip


def close(got: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(got.float(), expected.float(), rtol=0, atol=1e-4)


def test_a_frame_classifier_and_dkp_export_and_match_pytorch(tmp_path):
    teacher = FrameClassifierModule(frame_net("resnet50"), role="teacher", input_size=SIZE)
    out = tmp_path / "teacher"
    report = export(save(teacher, tmp_path / "teacher.ckpt"), out)
    assert sorted(p.name for p in report.files) == ["manifest.json", "teacher.onnx", "teacher.pt"]
    teacher = load_module(tmp_path / "teacher.ckpt")
    for fmt, run in runners(out, "teacher").items():
        for videos, count in CASES:
            x = frames(videos, count)
            features, logits = run(x)
            with torch.no_grad():
                expected = teacher.net(x)
            assert logits.shape == (videos, count, CLASSES), fmt
            close(features, expected.features)
            close(logits, expected.logits)

    dkp = DKPModule(frame_net(), frame_net("resnet50"), SIZE, SIZE, freeze_teacher=False,
                    propagation={"dim": 16, "heads": 2}, ensemble={"hidden": 8})  # fmt: skip
    out = tmp_path / "dkp"
    export(save(dkp, tmp_path / "dkp.ckpt"), out)
    dkp = load_module(tmp_path / "dkp.ckpt")
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["models"]) == {"student", "teacher", "fusion"}
    assert manifest["models"]["fusion"]["outputs"] == ["video_probs", "frame_probs"]
    nets = {name: runners(out, name) for name in ("student", "teacher", "fusion")}
    for fmt in ("torchscript", "onnx"):
        for videos, n_s in CASES:
            n_t = n_s // 3
            batch = Batch(
                target=torch.zeros(videos, CLASSES),
                duration=torch.linspace(5.0, 9.0, videos),
                video_ids=[str(i) for i in range(videos)],
                student_frames=frames(videos, n_s, seed=1),
                student_times=torch.linspace(0.3, 4.7, n_s).repeat(videos, 1),
                teacher_frames=frames(videos, n_t, seed=2),
                teacher_times=torch.linspace(0.9, 4.0, n_t).repeat(videos, 1),
            )
            with torch.no_grad():
                expected = dkp.net(batch)
            s_feat, s_logits = nets["student"][fmt](batch.student_frames)
            t_feat, t_logits = nets["teacher"][fmt](batch.teacher_frames)
            fractions = [t / batch.duration[:, None] for t in (batch.student_times,
                                                                batch.teacher_times)]  # fmt: skip
            video, frame = nets["fusion"][fmt](s_feat, fractions[0], t_feat, t_logits,
                                               fractions[1])  # fmt: skip
            close(s_logits, expected.student_logits)
            close(video, expected.video_probs)
            close(frame, expected.ensemble.frame_probs)


@pytest.mark.parametrize(
    ("num_frames", "groups", "route", "body"),
    [
        (6, 4, [[0, 1], [1, 2], [3, 3]], backbone("resnet50")),
        pytest.param(
            8, 4, [[0, 2], [1, 3], [2, 3], [3, 3]], backbone("resnet50"), marks=pytest.mark.slow
        ),
        pytest.param(8, 2, [[0, 0], [0, 2], [1, 1], [1, 3]], MSDNET, marks=pytest.mark.slow),
    ],
    ids=["resnet-6x4", "resnet-8x4", "msdnet-8x2"],
)
def test_the_early_exit_steps_export_and_stop_as_pytorch_does(
    tmp_path, num_frames, groups, route, body
):
    """The exported steps, chained by a runtime that carries their state and stops videos
    between them, give every checkpoint's probabilities of the whole PyTorch network and the
    exits of progressive inference; 6 frames in 4 groups are groups of 2, 2, 1 and 1."""
    net = early_exit_net(num_frames, groups, route, body)
    module = EarlyExitModule(net, input_size=SIZE)
    export(save(module, tmp_path / "ee.ckpt"), tmp_path)
    net = load_module(tmp_path / "ee.ckpt").net
    steps = EarlyExitSteps(net)
    manifest = json.loads((tmp_path / "manifest.json").read_text())["early_exit"]
    assert [s["frames"] for s in manifest["steps"]][0] == [net.grid.group_frames(0)]
    k = len(route)
    for fmt in ("torchscript", "onnx"):
        suffix = ".pt" if fmt == "torchscript" else ".onnx"
        exported = [runner(tmp_path / f"early_exit_step{i}{suffix}", plan.input_names)
                    for i, plan in enumerate(steps.plans)]  # fmt: skip
        for videos in (1, 5):
            x = frames(videos, num_frames, seed=videos)
            every = steps.run(x, ExitPolicy.of(None, k), exported).checkpoint_probs
            with torch.no_grad():
                close(every, net(x).softmax(-1))
            if videos > 1:
                # thresholds between the 2nd and 3rd surest videos, so float noise decides none
                top = every.max(-1).values.sort(0, descending=True).values
                policy = ExitPolicy.of(((top[1] + top[2]) / 2).tolist(), k)
                got, expected = (
                    steps.run(x, policy, exported),
                    progressive_inference(net, x, policy),
                )
                assert got.exit_index.tolist() == expected.exit_index.tolist()
                assert len(set(got.exit_index.tolist())) > 1
                close(got.probs, expected.probs)


def test_the_command_writes_what_it_says_and_refuses_clearly(tmp_path, capsys):
    ckpt = save(FrameClassifierModule(frame_net(), role="student", input_size=SIZE),
                tmp_path / "student.ckpt")  # fmt: skip
    assert export_main(["--ckpt", str(ckpt), "--out", str(tmp_path / "out"),
                        "--format", "onnx"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "student.onnx" in printed and "max difference to PyTorch" in printed
    assert not (tmp_path / "out" / "student.pt").exists()
    assert export_main(["--ckpt", str(tmp_path / "none.ckpt"), "--out", str(tmp_path)]) == 2
    assert "dkp-export: error:" in capsys.readouterr().err
    assert export_main(["--ckpt", str(ckpt), "--out", str(tmp_path), "--opset", "13"]) == 2
