import pytest
import torch

from dkp.data.batch import Batch
from dkp.models.backbones import build_backbone
from dkp.models.dkp import DKPNet
from dkp.models.dkp.propagation import PropagationBlock
from dkp.models.frame_net import FrameNet

C = 5


def tiny_net(width: int) -> FrameNet:
    return FrameNet(build_backbone("resnet18", base_width=width, layers=[1, 1, 1, 1]), C)


@pytest.fixture(scope="module")
def net() -> DKPNet:
    torch.manual_seed(0)
    return DKPNet(tiny_net(8), tiny_net(16), {"dim": 32, "heads": 4}, {"hidden": 16}).eval()


def make_batch(n_s=(6, 4), n_t=(3, 2), seed=0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    b, ls, lt = len(n_s), max(n_s), max(n_t)
    s_mask = torch.arange(ls)[None] < torch.tensor(n_s)[:, None]
    t_mask = torch.arange(lt)[None] < torch.tensor(n_t)[:, None]
    duration = torch.tensor([10.0 + 5 * i for i in range(b)])
    return Batch(
        target=torch.zeros(b, C),
        duration=duration,
        video_ids=[str(i) for i in range(b)],
        student_frames=torch.randint(0, 256, (b, ls, 3, 32, 32), generator=g, dtype=torch.uint8),
        student_times=torch.rand(b, ls, generator=g).sort(1).values * duration[:, None],
        student_mask=s_mask,
        teacher_frames=torch.randint(0, 256, (b, lt, 3, 48, 48), generator=g, dtype=torch.uint8),
        teacher_times=torch.rand(b, lt, generator=g).sort(1).values * duration[:, None],
        teacher_mask=t_mask,
    )


def test_outputs_are_distributions_and_shapes(net):
    batch = make_batch()
    out = net(batch)
    assert out.propagated_logits.shape == (2, 6, C)
    assert out.teacher_logits.shape == (2, 3, C)
    assert out.attention.shape == (2, 6, 3)
    torch.testing.assert_close(out.video_probs.sum(1), torch.ones(2))
    # attention over padded teacher frames is exactly zero
    assert torch.all(out.attention[1, :, 2] == 0)
    w = out.ensemble.weights[batch.student_mask]
    assert torch.all((w > 0) & (w < 1))


def test_padded_frames_change_nothing(net):
    batch = make_batch()
    before = net(batch)
    batch.student_frames[1, 4:] = 255 - batch.student_frames[1, 4:]
    batch.student_times[1, 4:] = 123.0
    batch.teacher_frames[1, 2:] = 0
    batch.teacher_times[1, 2:] = -7.0
    after = net(batch)
    torch.testing.assert_close(before.video_probs, after.video_probs)
    torch.testing.assert_close(
        before.ensemble.frame_probs[1, :4], after.ensemble.frame_probs[1, :4]
    )
    assert torch.all(after.ensemble.frame_probs[1, 4:] == 0)


def test_padding_equals_running_each_video_alone(net):
    batch = make_batch()
    together = net(batch).video_probs
    alone = make_batch(n_s=(4,), n_t=(2,))
    for name in ("student_frames", "student_times", "teacher_frames", "teacher_times"):
        full = getattr(batch, name)[1:2]
        setattr(alone, name, full[:, : 4 if name.startswith("student") else 2])
    alone.duration = batch.duration[1:2]
    torch.testing.assert_close(net(alone).video_probs[0], together[1], atol=1e-5, rtol=1e-5)


def test_teacher_features_change_student_predictions(net):
    batch = make_batch()
    before = net(batch)
    batch.teacher_frames[0] = 255 - batch.teacher_frames[0]
    after = net(batch)
    assert not torch.allclose(before.propagated_logits[0], after.propagated_logits[0])
    assert not torch.allclose(before.ensemble.frame_probs[0], after.ensemble.frame_probs[0])
    torch.testing.assert_close(before.student_logits, after.student_logits)
    torch.testing.assert_close(before.video_probs[1], after.video_probs[1])


def test_teacher_times_change_attention():
    torch.manual_seed(0)
    block = PropagationBlock(8, 8, dim=16, heads=2, dropout=0.0).eval()
    s, t = torch.randn(1, 4, 8), torch.randn(1, 3, 8)
    st = torch.tensor([[0.1, 0.3, 0.6, 0.9]])
    out_a, att_a = block(s, st, t, torch.tensor([[0.1, 0.5, 0.9]]))
    out_b, att_b = block(s, st, t, torch.tensor([[0.9, 0.5, 0.1]]))
    assert not torch.allclose(att_a, att_b)
    flat = PropagationBlock(8, 8, dim=16, heads=2, dropout=0.0, time_encoding="none").eval()
    _, att_c = flat(s, st, t, torch.tensor([[0.1, 0.5, 0.9]]))
    _, att_d = flat(s, st, t, torch.tensor([[0.9, 0.5, 0.1]]))
    torch.testing.assert_close(att_c, att_d)


@pytest.mark.parametrize("n_s, n_t", [(1, 1), (50, 20), (7, 13)])
def test_any_frame_counts(net, n_s, n_t):
    out = net(make_batch(n_s=(n_s,), n_t=(n_t,)))
    assert out.ensemble.frame_probs.shape == (1, n_s, C)
    torch.testing.assert_close(out.video_probs.sum(1), torch.ones(1))


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="divisible"):
        PropagationBlock(8, 8, dim=10, heads=4)
    with pytest.raises(ValueError, match="time_encoding"):
        PropagationBlock(8, 8, time_encoding="learned")
    with pytest.raises(ValueError, match="classes"):
        DKPNet(tiny_net(8), FrameNet(build_backbone("resnet18", base_width=8), C + 1))
