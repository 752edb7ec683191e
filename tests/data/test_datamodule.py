"""Batches from the data module: shapes, padding masks, targets, and bad videos."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from dkp.data.annotations.activitynet import load_activitynet
from dkp.data.datamodule import VideoDataModule
from dkp.data.dataset import VideoClipDataset, collate_clips
from dkp.data.decoding import PyAVReader
from dkp.data.sampling import build_sampling


def splits(root, **subsets):
    ann, videos = root / "activity_net.v1-3.min.json", root / "videos"
    return {
        name: (lambda s=subset: load_activitynet(ann, videos, [s]))
        for name, subset in subsets.items()
    }


def module(root, sampling, **kw):
    dm = VideoDataModule(
        splits(root, train="training", val="validation"),
        sampling,
        num_classes=8,
        student_size=32,
        teacher_size=48,
        **kw,
    )
    dm.setup("fit")
    return dm


def test_adaptive_batches(tiny_dataset):
    dm = module(tiny_dataset, build_sampling("adaptive", n_t=2, ratio=3), batch_size=4)
    batch = next(iter(dm.val_dataloader()))
    assert batch.student_frames.shape == (4, 6, 3, 32, 32)
    assert batch.teacher_frames.shape == (4, 2, 3, 48, 48)
    assert batch.student_frames.dtype == torch.uint8
    assert batch.student_mask.all() and batch.teacher_mask.all()
    records = dm.record_sets["val"].records[:4]
    for i, record in enumerate(records):
        assert batch.video_ids[i] == record.video_id
        assert batch.target[i].nonzero().flatten().tolist() == list(record.labels)
        expected = (np.arange(6) + 0.5) * record.duration / 6
        np.testing.assert_allclose(batch.student_times[i].numpy(), expected, rtol=1e-6)
        assert batch.duration[i] == pytest.approx(record.duration)


def test_frames_are_the_readers_frames(tiny_dataset):
    sampling = build_sampling("adaptive", n_t=2, ratio=2)
    records = load_activitynet(
        tiny_dataset / "activity_net.v1-3.min.json", tiny_dataset / "videos", ["validation"]
    ).records
    dataset = VideoClipDataset(records, sampling, PyAVReader(), 32, 48)
    batch = collate_clips([dataset[0]], 8)
    from dkp.data.decoding import FrameRequest

    times = tuple(batch.teacher_times[0].tolist())
    direct = PyAVReader().read(records[0].path, [FrameRequest(times, 48, 48)])[0]
    np.testing.assert_array_equal(batch.teacher_frames[0].permute(0, 2, 3, 1).numpy(), direct)


def test_fixed_interval_pads_and_masks(tiny_dataset):
    dm = module(tiny_dataset, build_sampling("fixed", r_t=2.0, ratio=2), eval_batch_size=8)
    batch = next(iter(dm.val_dataloader()))
    records = dm.record_sets["val"].records[:8]
    counts = [max(1, int(np.floor(r.duration / 2.0 + 0.5))) for r in records]
    assert batch.teacher_mask.sum(1).tolist() == counts
    assert batch.student_mask.sum(1).tolist() == [2 * c for c in counts]  # n_s = ratio * n_t
    assert batch.teacher_frames.shape[1] == max(counts)
    padded = ~batch.teacher_mask
    assert padded.any(), "durations 2-8 s must give different counts"
    assert (batch.teacher_frames[padded] == 0).all()
    assert (batch.teacher_times[padded] == 0).all()


def test_training_sampling_is_random_and_eval_is_not(tiny_dataset):
    dm = module(tiny_dataset, build_sampling("adaptive", n_t=3, ratio=1))
    train, val = dm.dataset("train"), dm.dataset("val")
    torch.manual_seed(0)
    a = train[0].teacher_times
    b = train[0].teacher_times
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(val[0].teacher_times, val[0].teacher_times)
    # The train split read for evaluation (dkp-exits fitting on it): every video once, in
    # order, sampled as the val split is, beside the training dataset, not in place of it.
    videos = [vid for b in dm.eval_dataloader("train") for vid in b.video_ids]
    assert videos == [r.video_id for r in dm.records("train").records]
    fixed = dm.dataset("train", training=False)
    np.testing.assert_array_equal(fixed[0].teacher_times, fixed[0].teacher_times)
    assert dm.dataset("train").training and not fixed.training


def test_corrupt_and_missing_videos(tiny_dataset, tmp_path, caplog):
    root = tmp_path / "copy"
    shutil.copytree(tiny_dataset, root)
    records = load_activitynet(
        root / "activity_net.v1-3.min.json", root / "videos", ["validation"]
    ).records
    records[1].path.write_bytes(b"\x00\x00\x00 truncated mp4")  # corrupt
    records[2].path.unlink()  # missing
    reloaded = load_activitynet(
        root / "activity_net.v1-3.min.json", root / "videos", ["validation"]
    )
    assert reloaded.missing == [records[2].video_id]
    dm = module(root, build_sampling("adaptive", n_t=1, ratio=2), eval_batch_size=8)
    batches = list(dm.val_dataloader())
    seen = [vid for b in batches for vid in b.video_ids]
    failed = [f for b in batches for f in b.failed]
    assert len(seen) == 6 and records[1].video_id not in seen
    assert [vid for vid, _ in failed] == [records[1].video_id]
    assert records[1].path.name in failed[0][1]
    assert records[1].video_id in caplog.text


def test_wrong_class_count_fails_before_training(tiny_dataset):
    dm = VideoDataModule(
        splits(tiny_dataset, train="training"), build_sampling("adaptive", n_t=1, ratio=1), 200
    )
    with pytest.raises(ValueError, match="data.num_classes: config says 200"):
        dm.setup("fit")
