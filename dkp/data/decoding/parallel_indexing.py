"""Packet indexes built before training, in parallel, so that no epoch waits for them.

A video's first read demuxes the whole file to index it (:class:`.pyav_reader.PyAVReader`);
left to the first epoch, that pass halves its loading rate on short videos. The data module
builds the missing indexes in ``prepare_data`` instead, with the DataLoader's own worker
processes, as PySlowFast and torchvision precompute their video metadata. A video that cannot
be indexed is reported, never raised: the epoch skips it as it skips any unreadable video.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from dkp.data.decoding.api import VideoDecodeError
from dkp.data.decoding.pyav_reader import PyAVReader

log = logging.getLogger(__name__)


@dataclass
class IndexingReport:
    """What :func:`index_videos` did: indexes built, already stored, and videos it could not
    index (path, reason)."""

    built: int = 0
    stored: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0


class _Indexing(Dataset):
    """Item i indexes video i: (built it now, error or "")."""

    def __init__(self, reader: PyAVReader, paths: list[Path]) -> None:
        self.reader, self.paths = reader, paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[bool, str]:
        try:
            return self.reader.ensure_index(self.paths[i]), ""
        except VideoDecodeError as err:
            return False, str(err)


def _as_is(item: tuple[bool, str]) -> tuple[bool, str]:
    return item


def index_videos(reader: PyAVReader, paths: Iterable[Path], workers: int = 0) -> IndexingReport:
    """Store the packet index of every video in ``paths`` that has none on disk, with
    ``workers`` processes (0: this one). ``reader`` must have an ``index_dir``."""
    if reader.index_store is None:
        raise ValueError("index_videos needs a reader with an index_dir to store indexes in")
    began = time.perf_counter()
    report = IndexingReport()
    todo = []
    for path in dict.fromkeys(Path(p) for p in paths):
        if reader.has_stored_index(path):
            report.stored += 1
        else:
            todo.append(path)
    if todo:
        log.info("indexing the packets of %d videos (%d workers)", len(todo), workers)
        dataset = _Indexing(reader, todo)
        # Its own generator: the workers' seeds must not come from the global RNG, or training
        # after this step would differ between a first run and one whose indexes are stored.
        loader = DataLoader(
            dataset,
            batch_size=None,
            num_workers=workers,
            collate_fn=_as_is,
            generator=torch.Generator(),
        )
        for path, (built, error) in zip(todo, loader, strict=True):
            report.built += built
            if error:
                report.failed.append((str(path), error))
    report.seconds = time.perf_counter() - began
    if todo:
        log.info(
            "packet indexes: %d built, %d already stored, %d unreadable, in %.1f s",
            report.built,
            report.stored,
            len(report.failed),
            report.seconds,
        )
    for _, error in report.failed[:10]:
        log.warning("cannot index %s", error)
    return report
