"""Dynamic DKP: the teacher and the fusion run only for the videos the student is unsure of."""

import torch

from dkp.data.batch import Batch
from dkp.models.backbones import build_backbone
from dkp.models.dkp import DKPNet
from dkp.models.dkp.dynamic import batch_rows, dynamic_dkp_inference
from dkp.models.early_exit.policy import ExitPolicy
from dkp.models.frame_net import FrameNet, masked_mean

C = 5


def policy(threshold: float) -> ExitPolicy:
    return ExitPolicy.of(threshold, 2)


def tiny_dkp() -> DKPNet:
    torch.manual_seed(0)

    def frame_net(width: int) -> FrameNet:
        return FrameNet(build_backbone("resnet18", base_width=width, layers=[1, 1, 1, 1]), C)

    return DKPNet(frame_net(8), frame_net(16), {"dim": 32, "heads": 4}, {"hidden": 16}).eval()


def make_batch(videos: int = 6, n_s: int = 4, n_t: int = 2) -> Batch:
    g = torch.Generator().manual_seed(1)
    duration = torch.full((videos,), 10.0)
    return Batch(
        target=torch.zeros(videos, C),
        duration=duration,
        video_ids=[f"v{i}" for i in range(videos)],
        student_frames=torch.randint(0, 256, (videos, n_s, 3, 32, 32), generator=g).byte(),
        student_times=torch.linspace(1, 9, n_s).repeat(videos, 1),
        student_mask=torch.ones(videos, n_s, dtype=torch.bool),
        teacher_frames=torch.randint(0, 256, (videos, n_t, 3, 48, 48), generator=g).byte(),
        teacher_times=torch.linspace(2, 8, n_t).repeat(videos, 1),
        teacher_mask=torch.ones(videos, n_t, dtype=torch.bool),
    )


@torch.no_grad()
def test_dynamic_dkp_runs_the_teacher_only_for_unsure_videos():
    net, batch = tiny_dkp(), make_batch()
    full = net(batch)
    student = masked_mean(full.student_logits.softmax(-1), batch.student_mask)
    conf = student.max(1).values
    threshold = conf.sort().values[2].item()  # the 2 least confident videos go on
    rows = []
    handle = net.teacher.backbone.register_forward_hook(lambda _m, i, _o: rows.append(len(i[0])))
    try:
        out = dynamic_dkp_inference(net, batch, policy(threshold))
    finally:
        handle.remove()
    go_on = conf < threshold
    assert out.exit_index.tolist() == go_on.long().tolist() and int(go_on.sum()) == 2
    assert rows == [2 * 2]  # 2 videos x 2 teacher frames, once
    torch.testing.assert_close(out.probs[~go_on], student[~go_on])
    # the videos that go on get exactly what DKP gives them on their own
    alone = net(batch_rows(batch, torch.nonzero(go_on).flatten())).video_probs
    torch.testing.assert_close(out.probs[go_on], alone, rtol=1e-5, atol=1e-6)
    assert dynamic_dkp_inference(net, batch, policy(0.0)).exit_index.tolist() == [0] * 6
    everyone = dynamic_dkp_inference(net, batch, policy(1.01))
    torch.testing.assert_close(everyone.probs, full.video_probs, rtol=1e-5, atol=1e-6)
