"""Packet indexes built before an epoch: every video once, in workers, bad ones reported."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest
import torch
from pytorch_lightning.trainer.states import TrainerFn

from dkp.data.annotations.activitynet import load_activitynet
from dkp.data.datamodule import VideoDataModule
from dkp.data.decoding import FrameRequest, PyAVReader
from dkp.data.decoding.parallel_indexing import index_videos
from dkp.data.sampling import build_sampling


@pytest.fixture
def dataset(tiny_dataset, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    return root


def videos(root, subset):
    ann = root / "activity_net.v1-3.min.json"
    return [r.path for r in load_activitynet(ann, root / "videos", [subset]).records]


def test_every_video_is_indexed_once_and_a_bad_one_is_reported(dataset, tmp_path, caplog):
    paths = videos(dataset, "validation")
    paths[3].write_bytes(b"\x00\x00\x00 not a video")
    reader = PyAVReader(index_dir=tmp_path / "index")
    rng = torch.get_rng_state()
    report = index_videos(reader, paths + paths[:2], workers=2)  # repeats are indexed once
    assert torch.equal(torch.get_rng_state(), rng)  # a first run trains as a later one
    assert (report.built, report.stored) == (len(paths) - 1, 0)
    assert [path for path, _ in report.failed] == [str(paths[3])]
    assert paths[3].name in caplog.text
    assert len(list((tmp_path / "index").glob("*.idx"))) == len(paths) - 1
    again = index_videos(reader, paths, workers=0)
    assert (again.built, again.stored, len(again.failed)) == (0, len(paths) - 1, 1)
    fresh = PyAVReader(index_dir=tmp_path / "index")
    fresh.read(paths[0], [FrameRequest((0.5, 1.5), 32, 32)])
    assert (fresh.stats.indexed_files, fresh.stats.file_reads) == (0, 1)


def test_indexing_needs_somewhere_to_store_them(dataset):
    with pytest.raises(ValueError, match="index_dir"):
        index_videos(PyAVReader(), videos(dataset, "validation"))


@pytest.mark.parametrize(
    ("fn", "subsets"),
    [(TrainerFn.FITTING, ("training", "validation")), (TrainerFn.TESTING, ("testing",))],
)
def test_prepare_data_indexes_the_splits_of_the_trainers_stage(dataset, tmp_path, fn, subsets):
    ann, root = dataset / "activity_net.v1-3.min.json", dataset / "videos"
    splits = {
        name: (lambda s=subset: load_activitynet(ann, root, [s]))
        for name, subset in (("train", "training"), ("val", "validation"), ("test", "testing"))
    }
    reader = PyAVReader(index_dir=tmp_path / "index")
    dm = VideoDataModule(splits, build_sampling("adaptive", n_t=1, ratio=1), 8, reader=reader)
    dm.prepare_data()  # no trainer: nothing to say which splits will be read
    assert not (tmp_path / "index").exists()
    dm.trainer = SimpleNamespace(state=SimpleNamespace(fn=fn))
    dm.prepare_data()
    expected = {p for subset in subsets for p in videos(dataset, subset)}
    assert len(list((tmp_path / "index").glob("*.idx"))) == len(expected)
    assert all(reader.has_stored_index(p) == (p in expected) for p in (root).iterdir())
