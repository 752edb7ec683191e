"""The frame selector: it learns to find the action in a frame, and says why it cannot fit."""

import pytest
import torch

from dkp.models.dkp.selector import FrameSelector, inside_segments, nearest_frames


def frames_with_objects(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy 32x32 frames; half hold a flat 12-px grey square somewhere (the "action")."""
    g = torch.Generator().manual_seed(seed)
    frames = (torch.rand(count, 3, 32, 32, generator=g) * 120 + 60).to(torch.uint8)
    inside = torch.arange(count) % 2 == 0
    for i in torch.nonzero(inside).flatten().tolist():
        x, y = torch.randint(0, 20, (2,), generator=g).tolist()
        frames[i, :, y : y + 12, x : x + 12] = 128
    return frames, inside


def test_it_learns_where_the_object_is_and_scores_any_leading_shape():
    frames, inside = frames_with_objects(256, seed=0)
    selector = FrameSelector.fit(frames, inside, width=4, epochs=15)
    assert not selector.training
    test, truth = frames_with_objects(128, seed=1)
    logits = selector(test.view(4, 32, 3, 32, 32))  # (videos, frames) in, one logit each out
    assert logits.shape == (4, 32)
    assert ((logits.flatten() > 0) == truth).float().mean() > 0.9
    again = FrameSelector.fit(frames, inside, width=4, epochs=15)  # seeded: the same weights
    torch.testing.assert_close(again(test), selector(test))


def test_it_needs_frames_on_both_sides():
    frames, _ = frames_with_objects(8, seed=0)
    with pytest.raises(ValueError, match="frame_selector: .*8 of 8 inside"):
        FrameSelector.fit(frames, torch.ones(8, dtype=torch.bool))
    with pytest.raises(ValueError, match="frame_selector.width"):
        FrameSelector(width=0)


def test_inside_segments_and_nearest_real_frames():
    times = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
    assert inside_segments(times, [(1.0, 2.0), (3.5, 10.0)]).tolist() == [0, 1, 1, 0, 1]
    assert not inside_segments(times, []).any()
    reference = torch.tensor([[0.0, 2.0, 4.0, 9.0]])
    real = torch.tensor([[True, True, True, False]])  # the 9 s frame is padding
    assert nearest_frames(torch.tensor([[0.4, 2.9, 8.0]]), reference, real).tolist() == [[0, 1, 2]]
