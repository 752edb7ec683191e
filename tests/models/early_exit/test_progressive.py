"""Early exit on the frames x depth grid: permutation, causal shift, progressive = full, costs."""

import pytest
import torch

from dkp.evaluation.cost import count_gmacs
from dkp.evaluation.early_exit.cost import cumulative_gmacs, route_frames, unit_costs
from dkp.models.backbones import build_backbone
from dkp.models.early_exit import (
    EarlyExitNet,
    ExitPolicy,
    Grid,
    ProgressiveRun,
    frame_permutation,
    parse_route,
    progressive_inference,
)
from dkp.models.early_exit.grid import spread_order
from dkp.models.early_exit.stages import ResNetStages

C, N, SIZE = 5, 8, 32
RESNET_ROUTE = [[0, 2], [1, 3], [2, 3], [3, 3]]
MSDNET_ROUTE = [[0, 0], [0, 2], [0, 3], [1, 1], [1, 2], [1, 3]]


def resnet_net(shift_div: int = 8) -> EarlyExitNet:
    torch.manual_seed(0)
    backbone = build_backbone("resnet50", base_width=8, layers=[1, 1, 1, 1])
    return EarlyExitNet(backbone, C, N, 4, RESNET_ROUTE, shift_div=shift_div).eval()


def msdnet_net() -> EarlyExitNet:
    torch.manual_seed(0)
    backbone = build_backbone(
        "msdnet", n_blocks=4, base=1, step=1, stepmode="even", channels=4,
        growth_rate=2, gr_factor=[1, 2, 4], bn_factor=[1, 2, 4], stem="cifar",
    )  # fmt: skip
    return EarlyExitNet(backbone, C, N, 2, MSDNET_ROUTE).eval()


def frames(batch: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, N, 3, SIZE, SIZE), generator=g, dtype=torch.uint8)


@pytest.fixture(scope="module", params=["resnet", "msdnet"])
def net(request) -> EarlyExitNet:
    return resnet_net() if request.param == "resnet" else msdnet_net()


# --- grid ---------------------------------------------------------------------------------
def test_frame_permutation_rule():
    assert frame_permutation(8, 2) == [0, 2, 4, 6, 1, 3, 5, 7]
    assert frame_permutation(8, 4) == [0, 4, 2, 6, 1, 5, 3, 7]
    assert frame_permutation(5, 1) == [0, 1, 2, 3, 4]
    assert spread_order(4) == [0, 2, 1, 3] and spread_order(3) == [0, 1, 2]
    for n in range(1, 17):
        for groups in range(1, n + 1):
            grid = Grid.build(n, groups)
            assert sorted(grid.permutation) == list(range(n))
            for g in range(groups):  # every group spans the whole video
                members = grid.group_frames(g)
                assert min(members) < groups and max(members) >= n - groups
                assert members == sorted(members)
            assert max(grid.sizes) - min(grid.sizes) <= 1 and grid.sizes == sorted(grid.sizes)[::-1]


def test_explicit_permutation_and_bad_configs():
    grid = Grid.build(10, 2, [5, 0, 9, 2, 7, 4, 6, 3, 8, 1])  # FrameExit's order
    assert grid.group_frames(0) == [5, 0, 9, 2, 7] and grid.group_frames(1) == [4, 6, 3, 8, 1]
    assert grid.shift_source() == [-1] * 5 + [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="not a permutation"):
        Grid.build(4, 2, [0, 1, 1, 3])
    with pytest.raises(ValueError, match="groups"):
        Grid.build(4, 5)
    with pytest.raises(ValueError, match="outside the grid"):
        parse_route([[0, 4]], groups=2, depths=4)
    with pytest.raises(ValueError, match="repeats"):
        parse_route([[0, 1], [0, 1]], groups=2, depths=4)


# --- online shift ---------------------------------------------------------------------------
def _group_states(net: EarlyExitNet, x: torch.Tensor) -> dict:
    run = ProgressiveRun(net, x)
    rows = torch.arange(x.shape[0])
    depth = net.body.num_stages - 1
    out = {}
    for g in range(net.grid.groups):
        for d in range(-1, depth + 1):
            s = run.state(g, d, rows)
            out[g, d] = [t.clone() for t in s] if isinstance(s, list) else [s.clone()]
    return out


@torch.no_grad()
def test_online_shift_is_causal_and_mixes_groups(net):
    x = frames(2)
    before = _group_states(net, x)
    later = net.grid.group_frames(1)[0]  # a frame of the second group
    y = x.clone()
    y[:, later] = 255 - y[:, later]
    after = _group_states(net, y)
    for (g, d), tensors in before.items():
        same = all(torch.equal(a, b) for a, b in zip(tensors, after[g, d], strict=True))
        if g == 0:  # earlier frames never see a later one
            assert same, (g, d)
        if g == 1 and d >= 0:
            assert not same, (g, d)
    # ... and an earlier group's frame reaches the later group's features through the shift
    z = x.clone()
    first = net.grid.group_frames(0)[0]
    z[:, first] = 255 - z[:, first]
    shifted = _group_states(net, z)
    assert not torch.equal(shifted[1, 0][-1], before[1, 0][-1])


@torch.no_grad()
def test_without_shift_groups_are_independent():
    net = resnet_net(shift_div=0)
    x = frames(2)
    before = _group_states(net, x)
    z = x.clone()
    z[:, net.grid.group_frames(0)] = 0
    after = _group_states(net, z)
    assert all(torch.equal(before[g, d][0], after[g, d][0]) for g, d in before if g > 0)


# --- progressive inference --------------------------------------------------------------------
@torch.no_grad()
def test_progressive_equals_full_forward_at_every_checkpoint(net):
    x = frames()
    full = net(x).softmax(-1)
    out = run(net, x, None)
    torch.testing.assert_close(out.checkpoint_probs, full, rtol=1e-5, atol=1e-6)
    assert out.exit_index.tolist() == [net.num_checkpoints - 1] * len(x)
    # with early stops: every video's probabilities equal the full forward's at its exit
    conf = full.max(-1).values
    thresholds = conf.median(dim=0).values.tolist()
    out = run(net, x, thresholds)
    expected = [
        next(k for k in range(net.num_checkpoints) if conf[i, k] >= thresholds[k]
             or k == net.num_checkpoints - 1)
        for i in range(len(x))
    ]  # fmt: skip
    assert out.exit_index.tolist() == expected
    assert len(set(expected)) > 1
    rows = torch.arange(len(x))
    torch.testing.assert_close(out.probs, full[rows, out.exit_index], rtol=1e-5, atol=1e-6)


@torch.no_grad()
def test_threshold_zero_stops_first_and_above_one_stops_last(net):
    x = frames()
    assert run(net, x, 0.0).exit_index.tolist() == [0] * len(x)
    last = net.num_checkpoints - 1
    assert run(net, x, 1.01).exit_index.tolist() == [last] * len(x)


@torch.no_grad()
def test_the_route_cost_runs_every_unit_once(net):
    x = frames()
    costs = unit_costs(net, SIZE)
    cumulative = cumulative_gmacs(net, costs)
    assert cumulative == sorted(cumulative) and cumulative[0] > 0
    # the whole route runs every frame through every stage once, and each exit on the frames
    # its checkpoints read
    reads = {}
    for c in net.route:
        reads[c.depth] = max(reads.get(c.depth, 0), route_frames_of(net, c.group))
    whole = N * (costs.stem + sum(costs.stages)) + sum(costs.heads)
    whole += sum(costs.exits[d] * n for d, n in reads.items())
    assert cumulative[-1] == pytest.approx(whole, rel=1e-12)
    if isinstance(net.body, ResNetStages):
        # ... which is what fvcore counts on the full forward (an MSDNet's last block also
        # computes finer scales no exit reads: eager execution runs them, a trace drops them)
        assert cumulative[-1] == pytest.approx(count_gmacs(net, x[:1]), rel=1e-9)


def run(net: EarlyExitNet, x: torch.Tensor, thresholds):
    return progressive_inference(net, x, ExitPolicy.of(thresholds, net.num_checkpoints))


def route_frames_of(net: EarlyExitNet, group: int) -> int:
    return sum(net.grid.sizes[: group + 1])


def test_route_frames():
    assert route_frames(resnet_net()) == [2, 4, 6, 8]
    assert route_frames(msdnet_net()) == [4, 4, 4, 8, 8, 8]  # 2 groups of 4


class _RowCounter:
    """Forward hooks counting the frame rows each module processed."""

    def __init__(self, modules: dict) -> None:
        self.rows = dict.fromkeys(modules, 0)
        self.handles = [m.register_forward_hook(self._hook(name)) for name, m in modules.items()]

    def _hook(self, name):
        def hook(_module, inputs, _output):
            x = inputs[0]
            self.rows[name] += (x[0] if isinstance(x, list) else x).shape[0]

        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


@torch.no_grad()
def test_no_module_runs_twice_for_the_same_frames():
    net = resnet_net()
    r = net.body.resnet
    modules = {"stem": r.conv1, **{f"layer{i}": getattr(r, f"layer{i}") for i in range(1, 5)}}
    x = frames()
    conf = net(x).softmax(-1).max(-1).values[:, 0]
    cut = conf.sort().values[3].item()  # 3 videos stop at checkpoint 1, 3 go on
    counter = _RowCounter(modules)
    try:
        out = run(net, x, [cut, 2.0, 2.0])
    finally:
        counter.remove()
    stopped = int((out.exit_index == 0).sum())
    assert stopped == 3 and out.exit_index.tolist().count(3) == 3
    # checkpoint 1 (group 0 = 2 frames, up to layer3); the rest run all 8 frames once each
    for name in ("stem", "layer1", "layer2", "layer3"):
        assert counter.rows[name] == 2 * stopped + 8 * (6 - stopped), name
    assert counter.rows["layer4"] == 8 * (6 - stopped)
    # the work done is what the route's cost charges the videos for stopping where they did
    costs = unit_costs(net, SIZE)
    work = costs.stem * counter.rows["stem"] + sum(
        costs.stages[d] * counter.rows[f"layer{d + 1}"] for d in range(4)
    )
    work += costs.heads[0] * 6 + sum(costs.heads[1:]) * (6 - stopped)  # ResNet exits: pooling
    charged = sum(cumulative_gmacs(net, costs)[k] for k in out.exit_index.tolist())
    assert work == pytest.approx(charged, rel=1e-12)


def test_bad_frame_counts_are_refused():
    with pytest.raises(ValueError, match="adaptive"):
        run(resnet_net(), frames()[:, :6], None)
