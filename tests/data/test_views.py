"""Multi-view testing: temporal clips, three spatial crops, collation and stacking of views."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dkp.data.annotations.records import VideoRecord
from dkp.data.batch import stack_views
from dkp.data.dataset import VideoClipDataset, collate_clips
from dkp.data.decoding import FrameRequest, PyAVReader
from dkp.data.sampling import build_sampling
from dkp.data.views import Views, cover_size, three_crops
from tests.moving_video import encode, moving_pattern


@pytest.fixture(scope="module")
def wide_video(tmp_path_factory) -> Path:
    """4 s at 10 fps, 64 high and 96 wide."""
    path = tmp_path_factory.mktemp("views") / "wide.mp4"
    encode(moving_pattern(40, 64, 96), fps=10, path=path)
    return path


def test_views_are_checked_and_counted():
    assert Views.of(None) == Views(1, 1) and Views.of({"clips": 2, "crops": 3}).count == 6
    assert Views(2, 3).label == "2 clips x 3 crops" and Views(1, 1).label == "1 clip x 1 crop"
    with pytest.raises(ValueError, match="views.crops: must be 1 or 3"):
        Views(1, 2)
    with pytest.raises(ValueError, match="views.clips"):
        Views(0, 1)
    with pytest.raises(ValueError, match="unknown option"):
        Views.of({"clip": 2})


def test_three_crops_cut_start_centre_and_end_of_the_long_side():
    assert cover_size((360, 640), (112, 112)) == (112, 199)
    assert cover_size((640, 360), (112, 112)) == (199, 112)
    assert cover_size((64, 64), (32, 48)) == (48, 48)
    wide = np.arange(2 * 4 * 10 * 3, dtype=np.int64).reshape(2, 4, 10, 3)
    crops = three_crops(wide, (4, 4))
    assert [c[0, 0, 0, 0] for c in crops] == [wide[0, 0, x, 0] for x in (0, 3, 6)]
    assert all(c.shape == (2, 4, 4, 3) for c in crops)
    tall = wide.transpose(0, 2, 1, 3)  # 10 high, 4 wide
    assert [c[0, 0, 0, 0] for c in three_crops(tall, (4, 4))] == [
        tall[0, y, 0, 0] for y in (0, 3, 6)
    ]


def test_a_video_is_read_as_clips_x_crops_views(wide_video):
    reader = PyAVReader()
    record = VideoRecord("wide", wide_video, 4.0, (1,), "test")
    sampling = build_sampling(n_t=2, ratio=2)
    single = VideoClipDataset([record], sampling, reader, 32, 48)[0]
    sample = VideoClipDataset([record], sampling, reader, 32, 48, views=Views(2, 3))[0]
    views = [sample, *sample.extra_views]
    assert len(views) == 6
    # clip j of 2 samples each of the n equal segments at (j + 0.5) / 2 of its length
    for v, view in enumerate(views):
        clip = v // 3
        np.testing.assert_allclose(view.teacher_times, (np.arange(2) + (clip + 0.5) / 2) * 2.0)
        np.testing.assert_allclose(view.student_times, (np.arange(4) + (clip + 0.5) / 2) * 1.0)
        assert view.student_frames.shape == (4, 32, 32, 3)
        assert view.teacher_frames.shape == (2, 48, 48, 3)
    # the crops are cut from the frames decoded at the size covering the input (64x96 -> 48x72)
    times = tuple(views[3].teacher_times.tolist())
    (whole,) = reader.read(wide_video, [FrameRequest(times, 48, 72)])
    for crop, x in zip(views[3:], (0, 12, 24), strict=True):
        np.testing.assert_array_equal(crop.teacher_frames, whole[:, :, x : x + 48])
    # one view is the usual evaluation sample, times and frames
    assert not single.extra_views
    np.testing.assert_array_equal(single.teacher_times, [1.0, 3.0])  # segment centres
    with pytest.raises(ValueError, match="for evaluation"):
        VideoClipDataset([record], sampling, reader, views=Views(2, 1), training=True)


def test_views_collate_and_stack_view_by_view(wide_video):
    records = [VideoRecord(f"v{i}", wide_video, 4.0, (i,), "test") for i in range(2)]
    dataset = VideoClipDataset(records, build_sampling(n_t=2, ratio=2), PyAVReader(), 32, 48,
                               views=Views(3, 1))  # fmt: skip
    batch = collate_clips([dataset[0], dataset[1]], num_classes=4)
    assert batch.num_views == 3 and len(batch) == 2
    assert all(view.video_ids == ["v0", "v1"] for view in batch.extra_views)
    stacked = stack_views(batch)
    assert stacked.video_ids == ["v0", "v1"] * 3 and stacked.num_views == 1
    assert stacked.teacher_frames.shape == (6, 2, 3, 48, 48)
    torch.testing.assert_close(stacked.teacher_times[4], batch.extra_views[1].teacher_times[0])
    torch.testing.assert_close(stacked.target, batch.target.repeat(3, 1))
    assert bool(stacked.student_mask.all())
