"""The videos a data config lists: every split's records, each file once, and the missing ids.

The data module's own split readers list them, so ``dkp-data`` sees the videos that training
and evaluation would read (``data.exclude_report`` applies here too; a listing for preparing
ignores ``data.prepared``, since it reads the originals).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from omegaconf import DictConfig, open_dict

from dkp.data.decoding import VideoReader
from dkp.data.preparation.report import CheckReport, leave_out_bad
from dkp.runtime.checks import check_config
from dkp.runtime.config import build_object


@dataclass
class ListedVideo:
    """One video file: the ids that name it and the longest duration an annotation gives."""

    path: str
    ids: list[str] = field(default_factory=list)
    duration: float | None = None


@dataclass
class DatasetListing:
    """Every video file of the listed splits (by absolute path), the ids with no file (id ->
    split), the data module's reader and the dataset's root."""

    videos: dict[str, ListedVideo]
    missing: dict[str, str]
    reader: VideoReader
    root: str | None


def list_dataset(
    cfg: DictConfig, splits: Sequence[str] | None = None, originals: bool = False
) -> DatasetListing:
    """The videos of ``splits`` (default: every configured split) of ``cfg.data``; with
    ``originals``, of the original files even where ``data.prepared`` is set. Config mistakes
    raise one-line errors (:mod:`dkp.runtime.checks`) before any annotation is read."""
    check_config(cfg, ("data",))
    data = cfg.data
    if originals:
        with open_dict(data):
            data.prepared = None
    module = build_object(data)
    names = list(module.splits) if splits is None else list(splits)
    unknown = [n for n in names if n not in module.splits]
    if unknown:
        configured = ", ".join(module.splits)
        raise ValueError(f"data.splits: no split {unknown[0]!r} (configured: {configured})")
    videos: dict[str, ListedVideo] = {}
    missing: dict[str, str] = {}
    report = CheckReport.load(module.exclude_report) if module.exclude_report else None
    for name in names:
        records = module.splits[name]()  # not the module's checks: a split may be all missing
        if report is not None:
            records = leave_out_bad(records, report, name)
        for video_id in records.missing:
            missing.setdefault(video_id, name)
        for record in records.records:
            path = os.path.abspath(record.path)
            video = videos.setdefault(path, ListedVideo(path))
            if record.video_id not in video.ids:
                video.ids.append(record.video_id)
            video.duration = max(video.duration or 0.0, record.duration)
    return DatasetListing(videos, missing, module.reader, module.root)
