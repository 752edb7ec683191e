"""LightningDataModule over any annotation format: splits are callables that give RecordSets."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from dkp.data.annotations.records import RecordSet
from dkp.data.dataset import VideoClipDataset, collate_clips
from dkp.data.decoding import PyAVReader, VideoReader, index_videos
from dkp.data.preparation.manifest import Manifest, with_renditions
from dkp.data.preparation.report import CheckReport, leave_out_bad
from dkp.data.sampling.batch_order import ResumableLoader, ResumableSampler, ShardSampler
from dkp.data.sampling.frame_times import ClipSampling
from dkp.data.views import Views
from dkp.runtime.distributed import world

log = logging.getLogger(__name__)

STAGE_SPLITS = {
    "fit": ("train", "val"),
    "validate": ("val",),
    "test": ("test",),
    "predict": ("predict",),
}


class VideoDataModule(pl.LightningDataModule):
    """Builds one :class:`VideoClipDataset` per split and their loaders.

    ``splits`` maps ``train``/``val``/``test``/``predict`` to a zero-argument callable that
    returns a :class:`RecordSet` (in configs: a reader with ``_partial_: true``). Every split
    must list the same classes as ``num_classes`` says, so a wrong data config fails here,
    before any training. ``prepare`` (e.g. building the embedded dataset) runs once per
    machine in :meth:`prepare_data`; ``root`` is the dataset folder the configs build paths
    from; ``metric`` is the field's headline metric for this dataset (checkpoint selection);
    ``split`` is the official split number of datasets that have several (UCF-101, HMDB-51),
    which their readers take from the config as ``${data.split}``. With ``index_videos`` (and
    a reader that stores packet indexes), :meth:`prepare_data` also indexes the videos of the
    splits the trainer's stage reads that have no index yet, with ``num_workers`` processes,
    so that no epoch waits for it (:mod:`dkp.data.decoding.parallel_indexing`). ``views``
    (``{clips: k, crops: 1|3}``) scores every evaluated video on several views
    (:mod:`dkp.data.views`); training always reads one. ``exclude_report`` (a ``dkp-data
    check`` report) leaves out the videos it finds errors in, each named in the log;
    ``prepared`` (a ``dkp-data prepare`` folder) reads each video from its rendition there
    (:mod:`dkp.data.preparation`).
    """

    def __init__(
        self,
        splits: Mapping[str, Callable[[], RecordSet]],
        sampling: ClipSampling,
        num_classes: int,
        reader: VideoReader | None = None,
        student_size: int | Sequence[int] = 112,
        teacher_size: int | Sequence[int] = 224,
        batch_size: int = 8,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        hflip: bool = False,
        prepare: Callable[[], object] | None = None,
        root: str | None = None,
        metric: str = "mAP",
        split: int | None = None,
        index_videos: bool = True,
        views: Views | Mapping[str, int] | None = None,
        prepared: str | None = None,
        exclude_report: str | None = None,
    ) -> None:
        super().__init__()
        if metric not in ("mAP", "top1", "top5"):
            raise ValueError(f"data.metric: {metric!r} is not mAP, top1 or top5")
        unknown = set(splits) - {"train", "val", "test", "predict"}
        if unknown:
            raise ValueError(f"data.splits: unknown split names {sorted(unknown)}")
        if batch_size < 1 or (eval_batch_size is not None and eval_batch_size < 1):
            raise ValueError("data.batch_size: must be >= 1")
        if num_workers < 0:
            raise ValueError("data.num_workers: must be >= 0")
        if root is not None and prepare is None and not Path(root).is_dir():
            raise FileNotFoundError(f"data.root: {root} is not a folder (the dataset's root)")
        self.splits = dict(splits)
        self.sampling = sampling
        self.num_classes = num_classes
        self.reader = reader if reader is not None else PyAVReader()
        self.student_size = student_size
        self.teacher_size = teacher_size
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.hflip = hflip
        self.prepare = prepare
        self.root = root
        self.metric = metric
        self.split = split
        self.index_videos = index_videos
        self.views = Views.of(views)
        self.prepared = prepared
        self.exclude_report = exclude_report
        self._manifest = _loaded("data.prepared", Manifest.load, prepared)
        self._check_report = _loaded("data.exclude_report", CheckReport.load, exclude_report)
        self.record_sets: dict[str, RecordSet] = {}
        self.datasets: dict[tuple[str, bool], VideoClipDataset] = {}
        self._train_position: dict[str, int] = {}
        self._train_loader: ResumableLoader | None = None

    def adapt_to(self, model: Any) -> None:
        """Decode at ``model``'s input sizes, after checking that the sampling gives every
        stream the model reads (``model.networks``) and that the data has its classes."""
        for name in model.networks:
            if getattr(self.sampling, name) is None:
                raise ValueError(
                    f"sampling.networks: the model reads the {name} stream; add {name!r} to it"
                )
        for name, size in model.input_sizes.items():
            setattr(self, f"{name}_size", size)
        if model.num_classes not in (None, self.num_classes):
            raise ValueError(
                f"data.num_classes: the data has {self.num_classes} classes but the model "
                f"predicts {model.num_classes}"
            )

    def prepare_data(self) -> None:
        if self.prepare is not None:
            self.prepare()
        reader = self.reader
        if self.index_videos and isinstance(reader, PyAVReader) and reader.index_store is not None:
            paths = [r.path for name in self._stage_splits() for r in self.records(name).records]
            index_videos(reader, paths, self.num_workers)

    def _stage_splits(self) -> tuple[str, ...]:
        """The configured splits the attached trainer's current stage reads (none without)."""
        fn = self.trainer.state.fn if self.trainer is not None else None
        names = STAGE_SPLITS.get(fn.value, ()) if fn is not None else ()
        return tuple(name for name in names if name in self.splits)

    @property
    def classes(self) -> list[str]:
        """Class names, from the first split that has been (or can be) loaded."""
        if not self.record_sets:
            self.records(next(iter(self.splits)))
        return next(iter(self.record_sets.values())).classes

    def _load(self, name: str) -> RecordSet:
        if name not in self.splits:
            raise ValueError(f"data.splits: no '{name}' split configured")
        records = self.splits[name]()
        if self._check_report is not None:
            records = leave_out_bad(records, self._check_report, name)
        if self._manifest is not None:
            records = with_renditions(records, self.prepared, self._manifest, self.root, name)
        if records.num_classes != self.num_classes:
            raise ValueError(
                f"data.num_classes: config says {self.num_classes} but the {name} split's "
                f"annotations list {records.num_classes} classes"
            )
        if not records.records:
            raise ValueError(f"data.splits.{name}: no usable videos ({records.summary()})")
        log.info("%s split: %s", name, records.summary())
        return records

    def setup(self, stage: str | None = None) -> None:
        names = STAGE_SPLITS[stage] if stage in STAGE_SPLITS else tuple(self.splits)
        for name in names:
            self.dataset(name)

    def records(self, name: str) -> RecordSet:
        """The records of split ``name``, loaded on first use."""
        if name not in self.record_sets:
            self.record_sets[name] = self._load(name)
        return self.record_sets[name]

    def dataset(self, name: str, training: bool | None = None) -> VideoClipDataset:
        """The dataset of split ``name``, built on first use: sampled and augmented as for
        training if ``training`` (default: for the train split alone), else as for evaluation."""
        training = name == "train" if training is None else training
        if (name, training) not in self.datasets:
            self.datasets[name, training] = VideoClipDataset(
                self.records(name).records,
                self.sampling,
                self.reader,
                student_size=self.student_size,
                teacher_size=self.teacher_size,
                training=training,
                hflip=self.hflip,
                views=None if training else self.views,
            )
        return self.datasets[name, training]

    def _loader(
        self, name: str, batch_size: int, loader: type = DataLoader, training: bool = False, **kw
    ) -> DataLoader:
        return loader(
            self.dataset(name, training),
            batch_size=batch_size,
            num_workers=self.num_workers,
            collate_fn=functools.partial(collate_clips, num_classes=self.num_classes),
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            drop_last=False,
            **kw,
        )

    def eval_dataloader(self, name: str) -> DataLoader:
        """Split ``name`` (the train split too) read for evaluation: every video once, in order.
        In a distributed run each process scores its own shard; no video is repeated."""
        sharded = world()[1] > 1
        sampler = ShardSampler(self.dataset(name, training=False)) if sharded else None
        return self._loader(name, self.eval_batch_size, sampler=sampler)

    def train_dataloader(self) -> DataLoader:
        """Shuffled per (seed, epoch), resumable mid-epoch (:mod:`.sampling.batch_order`)."""
        sampler = ResumableSampler(self.dataset("train"))
        loader = self._loader(
            "train", self.batch_size, ResumableLoader, training=True, sampler=sampler
        )
        if self._train_position:
            loader.load_state_dict(self._train_position)
            self._train_position = {}
        self._train_loader = loader
        return loader

    # Where training stands in its epoch, in the checkpoint. Lightning also saves the state of
    # stateful loaders, but restores it only if it builds the loader after reading the
    # checkpoint; a cosine schedule makes it build the loader before (to count the steps).
    def state_dict(self) -> dict[str, int]:
        return self._train_loader.state_dict() if self._train_loader is not None else {}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._train_position = dict(state)

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", self.eval_batch_size)


def _loaded(field: str, load: Callable[[str], Any], path: str | None) -> Any:
    """``load(path)``, or None without a path; its error names the config ``field``."""
    if path is None:
        return None
    try:
        return load(path)
    except (OSError, ValueError) as err:
        raise type(err)(f"{field}: {err}") from None
