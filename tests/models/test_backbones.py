"""Backbones: published compute/size figures, width/depth options, stages, and local weights."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

from dkp.models.backbones import BACKBONES, build_backbone
from dkp.models.weights import WeightsLoadError, load_state_dict_file


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _with_classifier(name: str) -> nn.Module:
    backbone = build_backbone(name)
    return nn.Sequential(backbone, nn.Linear(backbone.out_dim, 1000)).eval()


# fvcore counts one multiply-add as one "flop". By default it also charges eval-mode batch_norm
# 2 per element and adaptive_avg_pool2d 1 per input element, and skips (with a warning) relu,
# relu6 (hardtanh), add and max_pool2d. Published figures (ResNet paper/torchvision, MobileNetV2
# paper's 300M MACs) count only conv and fc multiply-adds, so only those operators are summed
# here, the 1000-way fc included. With batch_norm counted, MobileNetV2 reads 0.314 (+4.7%); the
# ResNets move by under 0.6%. `set_op_handle("aten::batch_norm", None)` cannot switch a default
# handle off (fvcore 0.1.5 checks its handles before its ignore list), hence the filtering.
COUNTED = ("conv", "linear")
NOT_COUNTED = ("batch_norm", "adaptive_avg_pool2d")


def _flops(model: nn.Module, size: int) -> FlopCountAnalysis:
    flops = FlopCountAnalysis(model, torch.zeros(1, 3, size, size))
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    return flops


def _gmacs(model: nn.Module, size: int) -> float:
    """Multiply-adds of convolutions and linear layers, in billions (the published convention)."""
    by_operator = _flops(model, size).by_operator()
    assert set(by_operator) <= {*COUNTED, *NOT_COUNTED}, by_operator
    return sum(by_operator.get(op, 0) for op in COUNTED) / 1e9


# Published GFLOPs (multiply-adds) and parameters (with the 1000-way classifier) at 224x224.
# ResNet-18 at 112x112: the figure first asked for, 0.455, is 1.82 / 4, which assumes every map
# shrinks by exactly 2x2. At 112 the last stage is 4x4, not 3.5x3.5 (a 7x7 map under a stride-2,
# pad-1 3x3 conv), so layer4 costs 16/12.25 of a quarter; the exact conv+fc count is 0.4853.
PUBLISHED = [
    ("resnet18", 224, 1.82, 11.7),
    ("resnet18", 112, 0.4853, 11.7),
    ("resnet34", 224, 3.67, 21.8),
    ("resnet50", 224, 4.11, 25.6),
    ("resnet101", 224, 7.83, 44.5),
    ("resnet152", 224, 11.56, 60.2),
    ("mobilenet_v2", 224, 0.30, 3.5),
]


@pytest.mark.parametrize(("name", "size", "gflops", "mparams"), PUBLISHED)
def test_published_flops_and_params(name: str, size: int, gflops: float, mparams: float) -> None:
    model = _with_classifier(name)
    assert _params(model) / 1e6 == pytest.approx(mparams, rel=0.01)
    assert _gmacs(model, size) == pytest.approx(gflops, rel=0.01)


def test_resnet18_at_112_differs_from_a_quarter_only_in_layer4() -> None:
    """Backs the 0.4853 figure above: only layer4 fails to shrink by exactly 4 from 224 to 112."""
    model = _with_classifier("resnet18")

    def per_module(size: int) -> dict[str, int]:
        counts = _flops(model, size).by_module_and_operator()
        return {name: sum(ops.get(op, 0) for op in COUNTED) for name, ops in counts.items()}

    big, small = per_module(224), per_module(112)
    for stage in ("0.conv1", "0.layer1", "0.layer2", "0.layer3"):
        assert small[stage] * 4 == big[stage]
    # Every layer4 conv outputs at the last stage's resolution: 7x7 at 224, 4x4 at 112.
    assert small["0.layer4"] * 49 == big["0.layer4"] * 16
    assert small["1"] == big["1"]  # the fc


def test_unknown_name_lists_known() -> None:
    with pytest.raises(ValueError, match="resnet18.*") as info:
        build_backbone("resnet19")
    assert all(name in str(info.value) for name in BACKBONES)


@pytest.mark.parametrize(
    ("name", "kwargs", "out_dim", "stage_channels"),
    [
        ("resnet18", {}, 512, [64, 128, 256, 512]),
        ("resnet50", {}, 2048, [256, 512, 1024, 2048]),
        ("resnet18", {"base_width": 8, "layers": [1, 1, 1, 1]}, 64, [8, 16, 32, 64]),
        ("resnet50", {"base_width": 8, "layers": [1, 1, 1, 1]}, 256, [32, 64, 128, 256]),
        ("mobilenet_v2", {}, 1280, [24, 32, 96, 1280]),
        ("mobilenet_v2", {"width_mult": 0.25}, 1280, [8, 8, 24, 1280]),
        ("mobilenet_v2", {"width_mult": 1.4}, 1792, [32, 48, 136, 1792]),
    ],
)
def test_out_dim_and_stage_channels(
    name: str, kwargs: dict, out_dim: int, stage_channels: list[int]
) -> None:
    model = build_backbone(name, **kwargs)
    assert model.out_dim == out_dim
    assert model.stage_channels == stage_channels


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("resnet18", {"base_width": 8, "layers": [1, 1, 1, 1]}),
        ("resnet50", {"base_width": 8, "layers": [1, 1, 1, 1]}),
        ("mobilenet_v2", {"width_mult": 0.25}),
    ],
)
@pytest.mark.parametrize("size", [32, 64])
def test_tiny_configs_run_on_small_frames(name: str, kwargs: dict, size: int) -> None:
    model = build_backbone(name, **kwargs)
    x = torch.randn(2, 3, size, size)
    feats = model(x)  # training mode: BatchNorm needs B > 1 once maps reach 1x1
    assert feats.shape == (2, model.out_dim)
    assert torch.isfinite(feats).all()
    stages = model.eval().forward_stages(x)
    assert [f.shape[1] for f in stages] == model.stage_channels
    # Stages end at strides 4, 8, 16, 32 (ceil division: padding keeps odd maps).
    assert [f.shape[-1] for f in stages] == [-(-size // s) for s in (4, 8, 16, 32)]
    pooled = stages[-1].mean(dim=(2, 3))
    torch.testing.assert_close(model(x), pooled)


def test_width_and_depth_options_change_params() -> None:
    full = _params(build_backbone("resnet18"))
    half = _params(build_backbone("resnet18", base_width=32))
    # Conv weights scale with width squared; the stem and BatchNorm only linearly.
    assert 0.25 <= half / full < 0.26
    assert _params(build_backbone("resnet34", layers=[2, 2, 2, 2])) == full
    assert _params(build_backbone("resnet50", layers=[3, 4, 23, 3])) == _params(
        build_backbone("resnet101")
    )
    assert _params(build_backbone("resnet18", layers=[1, 1, 1, 1])) < full
    mnv2 = [_params(build_backbone("mobilenet_v2", width_mult=w)) for w in (0.5, 1.0, 1.4)]
    assert mnv2 == sorted(mnv2)


def test_torchvision_key_names() -> None:
    """Key counts and samples of torchvision's state_dicts (fc/classifier excluded here)."""
    r18 = build_backbone("resnet18").state_dict()
    r50 = build_backbone("resnet50").state_dict()
    mnv2 = build_backbone("mobilenet_v2").state_dict()
    # torchvision: 122, 320 and 314 keys, each with two classifier keys.
    assert (len(r18), len(r50), len(mnv2)) == (120, 318, 312)
    assert {"conv1.weight", "bn1.running_var", "layer2.0.downsample.0.weight"} <= set(r18)
    assert {"layer1.0.downsample.1.weight", "layer4.2.conv3.weight"} <= set(r50)
    assert tuple(r50["layer2.0.conv2.weight"].shape) == (128, 128, 3, 3)
    assert {
        "features.0.0.weight",
        "features.1.conv.1.weight",
        "features.17.conv.1.0.weight",
        "features.18.1.running_mean",
    } <= set(mnv2)


def test_initialisation_and_zero_init_residual() -> None:
    model = build_backbone("resnet18", base_width=8)
    assert torch.equal(model.layer1[0].bn2.weight, torch.ones(8))
    zeroed = build_backbone("resnet50", base_width=8, zero_init_residual=True)
    assert not zeroed.layer1[0].bn3.weight.any()
    assert zeroed.layer1[0].bn2.weight.all()


def _fill_buffers(module: nn.Module) -> None:
    """Non-default BatchNorm statistics, so a round trip proves buffers are loaded too."""
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)


def test_torchvision_style_round_trip(tmp_path: Path) -> None:
    source = build_backbone("resnet18", base_width=16)
    _fill_buffers(source)
    state = dict(source.state_dict())
    state["fc.weight"] = torch.randn(1000, source.out_dim)
    state["fc.bias"] = torch.randn(1000)
    path = tmp_path / "resnet18-tv.pth"
    torch.save(state, path)

    loaded = build_backbone("resnet18", base_width=16, weights=str(path))
    for key, value in source.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)


def test_lightning_checkpoint_with_key_prefix(tmp_path: Path) -> None:
    source = build_backbone("mobilenet_v2", width_mult=0.25)
    state = {f"student.backbone.{k}": v for k, v in source.state_dict().items()}
    state["student.head.weight"] = torch.zeros(3, 1280)
    path = tmp_path / "epoch=3.ckpt"
    torch.save({"epoch": 3, "state_dict": state}, path)

    target = build_backbone("mobilenet_v2", width_mult=0.25)
    assert load_state_dict_file(target, path, key_prefix="student.backbone.") == ([], [])
    torch.testing.assert_close(target.state_dict(), source.state_dict(), rtol=0, atol=0)
    with pytest.raises(WeightsLoadError, match="teacher"):
        load_state_dict_file(target, path, key_prefix="teacher.")


def test_shape_mismatch_names_file_key_and_shapes(tmp_path: Path) -> None:
    path = tmp_path / "wide.pth"
    torch.save(build_backbone("resnet18", base_width=16).state_dict(), path)
    with pytest.raises(WeightsLoadError) as info:
        build_backbone("resnet18", base_width=8, weights=str(path))
    message = str(info.value)
    assert str(path) in message
    assert "conv1.weight: module (8, 3, 7, 7), file (16, 3, 7, 7)" in message
    assert "layer4.1.bn2.running_var: module (64,), file (128,)" in message


def test_missing_and_unexpected_keys(tmp_path: Path) -> None:
    state = dict(build_backbone("resnet18", base_width=8).state_dict())
    del state["layer1.0.conv1.weight"]
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "partial.pth"
    torch.save(state, path)
    target = build_backbone("resnet18", base_width=8)
    with pytest.raises(WeightsLoadError, match="layer1.0.conv1.weight") as info:
        load_state_dict_file(target, path)
    assert "extra.weight" in str(info.value) and str(path) in str(info.value)
    missing, unexpected = load_state_dict_file(target, path, strict=False)
    assert (missing, unexpected) == (["layer1.0.conv1.weight"], ["extra.weight"])


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "resnet50-0676ba61.pth"
    with pytest.raises(FileNotFoundError, match="resnet50-0676ba61.pth"):
        build_backbone("resnet50", base_width=8, weights=str(path))


class _Payload:
    """Unpickling this would create a directory: the stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.mkdir, (str(self.marker),))


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "payload": _Payload(marker)}, path)
    assert not marker.exists()
    with pytest.raises(WeightsLoadError, match="evil.pth"):
        load_state_dict_file(build_backbone("resnet18", base_width=8), path)
    assert not marker.exists()
