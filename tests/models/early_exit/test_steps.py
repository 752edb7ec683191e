"""The route as steps with explicit state: the same logits and exits as the whole network and
progressive inference, the least state carried, and an online shift that traces."""

from __future__ import annotations

import warnings

import pytest
import torch

from dkp.models.backbones import build_backbone
from dkp.models.early_exit import EarlyExitNet, ExitPolicy, online_shift, progressive_inference
from dkp.models.early_exit.steps import EarlyExitSteps
from tests.models.early_exit.test_progressive import frames, msdnet_net, resnet_net

C = 5


def resnet_grid(num_frames: int, groups: int, route: list[list[int]]) -> EarlyExitNet:
    torch.manual_seed(1)
    backbone = build_backbone("resnet18", base_width=8, layers=[1, 1, 1, 1])
    return EarlyExitNet(backbone, C, num_frames, groups, route).eval()


NETS = {
    "resnet 8 frames / 4 groups": resnet_net,
    "resnet 7 frames / 3 groups (3, 2, 2)": lambda: resnet_grid(7, 3, [[0, 1], [1, 3], [2, 3]]),
    "resnet without shift": lambda: resnet_net(shift_div=0),
    "msdnet": msdnet_net,
}


@pytest.fixture(scope="module", params=list(NETS))
def net(request) -> EarlyExitNet:
    return NETS[request.param]()


def clip(net: EarlyExitNet, batch: int = 5, seed: int = 0) -> torch.Tensor:
    x = frames(batch, seed)
    return x[:, : net.grid.num_frames] if net.grid.num_frames <= x.shape[1] else x


def test_steps_give_every_checkpoint_of_the_whole_network(net):
    x = clip(net)
    out = EarlyExitSteps(net).run(x, ExitPolicy.of(None, net.num_checkpoints))
    with torch.no_grad():
        expected = net(x).float().softmax(-1)
    torch.testing.assert_close(out.checkpoint_probs, expected, rtol=0, atol=1e-6)
    assert out.exit_index.tolist() == [net.num_checkpoints - 1] * 5


def test_steps_stop_as_progressive_inference_does(net):
    x = clip(net, batch=8, seed=3)
    steps = EarlyExitSteps(net)
    every = steps.run(x, ExitPolicy.of(None, net.num_checkpoints)).checkpoint_probs
    # thresholds at each checkpoint's median confidence: about half the videos stop there
    policy = ExitPolicy.of(every.max(-1).values.median(0).values.tolist(), net.num_checkpoints)
    got, expected = steps.run(x, policy), progressive_inference(net, x, policy)
    assert got.exit_index.tolist() == expected.exit_index.tolist()
    assert len(set(got.exit_index.tolist())) > 1
    torch.testing.assert_close(got.probs, expected.probs, rtol=0, atol=1e-6)


def test_each_step_reads_its_groups_once_and_carries_only_what_later_steps_read():
    net = resnet_net()  # route (0, 2), (1, 3), (2, 3), (3, 3); 4 groups of 2 frames
    plans = EarlyExitSteps(net).plans
    assert [p.groups for p in plans] == [(0,), (1,), (2,), (3,)]
    first, second = plans[0], plans[1]
    assert first.input_names == ["frames_g0"]
    # group 0 continues from its layer3 output; group 1 reads 1/8 of group 0's stage inputs
    assert first.output_names == ["logits", "shift_g0_stem_next", "shift_g0_d0_next",
                                  "shift_g0_d1_next", "state_g0_d2_next"]  # fmt: skip
    assert [f"{n}_next" for n in second.input_names[1:]] == first.output_names[1:]
    assert second.ops[:2] == (("stage", 0, 3), ("exit", 0, 3))
    assert plans[-1].output_names == ["logits"]
    x = frames(2)
    steps = EarlyExitSteps(net)
    with torch.no_grad():
        out = steps.steps[0](*steps.group_frames(x, first))
    stem_channels = net.body.resnet.bn1.num_features
    assert out[1].shape == (2 * 2, stem_channels // 8, 8, 8)  # 2 videos x 2 frames, 1/8 of C


def test_the_online_shift_follows_its_input_once_traced_and_exported(tmp_path):
    """TSM's export bug: a shift written as an in-place slice assignment traces into a
    constant. The shift must give the exported graph's output for any input."""
    ort = pytest.importorskip("onnxruntime")

    class Shift(torch.nn.Module):
        def forward(self, current: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
            return online_shift(current, previous, 4)

    example = (torch.zeros(2, 8, 3, 3), torch.zeros(2, 8, 3, 3))
    other = (torch.randn(3, 8, 3, 3), torch.randn(3, 8, 3, 3))
    expected = torch.cat([other[1][:, :2], other[0][:, 2:]], dim=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(Shift(), example)
        path = tmp_path / "shift.onnx"
        torch.onnx.export(Shift(), example, str(path), dynamo=False, opset_version=17,
                          input_names=["current", "previous"],
                          dynamic_axes={"current": {0: "b"}, "previous": {0: "b"}})  # fmt: skip
    torch.testing.assert_close(traced(*other), expected, rtol=0, atol=0)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"current": other[0].numpy(), "previous": other[1].numpy()})[0]
    torch.testing.assert_close(torch.from_numpy(got), expected, rtol=0, atol=0)
