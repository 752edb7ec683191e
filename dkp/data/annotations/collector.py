"""What every annotation reader does with its entries once parsed.

A malformed entry raises :class:`AnnotationError` or, with ``on_error="skip"``, is logged and
listed in ``RecordSet.skipped``; a video missing on disk is counted in ``RecordSet.missing``;
a duration the annotations do not give is probed from the video (in a thread pool, since
probing is I/O-bound), and a video that cannot be probed is skipped, never a crash.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from dkp.data.annotations.records import (
    MAX_DURATION,
    SUBSETS,
    VIDEO_EXTENSIONS,
    AnnotationError,
    RecordSet,
    VideoRecord,
    find_video,
)
from dkp.data.decoding import PyAVReader, VideoDecodeError, VideoReader

log = logging.getLogger(__name__)

UNKNOWN = math.nan  # the duration of a record whose video still has to be probed


def check_options(on_error: str, subset: str | None = None) -> None:
    """Refuse an ``on_error`` other than raise/skip and a subset name the records cannot carry."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error: {on_error!r} is not 'raise' or 'skip'")
    if subset is not None and subset not in SUBSETS:
        raise ValueError(f"subset: {subset!r} is not one of {SUBSETS}")


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """The non-blank lines of a text file, stripped (CRLF too), with their 1-based numbers."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise AnnotationError(f"{path}: not UTF-8 text ({err})") from err
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


def find_video_in(
    folders: Iterable[Path], stems: list[str], extensions: tuple[str, ...] = VIDEO_EXTENSIONS
) -> Path | None:
    """The first ``<folder>/<stem><ext>`` that exists, trying the folders in order."""
    for folder in folders:
        video = find_video(folder, stems, extensions)
        if video is not None:
            return video
    return None


class Collector:
    """Gathers one reader's records, rejected entries and missing videos into a RecordSet."""

    def __init__(self, classes: list[str], on_error: str = "raise") -> None:
        check_options(on_error)
        self.on_error = on_error
        self.result = RecordSet(classes=list(classes), records=[])

    def reject(self, entry: str, err: AnnotationError) -> None:
        """A malformed entry: raise ``err``, or (``on_error="skip"``) warn and list it."""
        if self.on_error == "raise":
            raise err
        log.warning("skipping: %s", err)
        self.result.skipped.append((entry, str(err)))

    def add(self, record: VideoRecord | None, video_id: str) -> None:
        """Keep ``record``, or count ``video_id`` as missing on disk when there is none."""
        if record is None:
            self.result.missing.append(video_id)
        else:
            self.result.records.append(record)

    def finish(
        self,
        source: str,
        prober: VideoReader | None = None,
        nominal_duration: float | None = None,
        workers: int = 8,
    ) -> RecordSet:
        """Fill in unknown durations (probe with ``prober``, else ``nominal_duration``); log.

        Without either, a reader for a format that has no durations cannot work: that is a
        configuration error, raised as ValueError.
        """
        unknown = [r for r in self.result.records if math.isnan(r.duration)]
        if unknown and prober is not None:
            self.result.records = self._probed(prober, workers)
        elif unknown:
            if nominal_duration is None or not nominal_duration > 0:
                raise ValueError(
                    f"{source}: the annotations give no durations; set probe_durations: true "
                    "or a positive nominal_duration"
                )
            self.result.records = [
                dataclasses.replace(r, duration=float(nominal_duration))
                if math.isnan(r.duration)
                else r
                for r in self.result.records
            ]
        log.info("%s: %s", source, self.result.summary())
        return self.result

    def _probed(self, prober: VideoReader, workers: int) -> list[VideoRecord]:
        records = self.result.records
        todo = [i for i, r in enumerate(records) if math.isnan(r.duration)]
        log.info("probing the duration of %d videos", len(todo))
        local = threading.local()  # readers keep per-file state: one copy per thread

        def probe(i: int) -> VideoRecord | str:
            if not hasattr(local, "reader"):
                local.reader = copy.deepcopy(prober)
            try:
                info = local.reader.probe(records[i].path)
            except VideoDecodeError as err:
                return str(err)
            if not 0 < info.duration <= MAX_DURATION:
                return f"{records[i].path}: probed duration {info.duration!r} is not in (0, a day]"
            return dataclasses.replace(records[i], duration=info.duration, fps=info.fps)

        with ThreadPoolExecutor(max(1, workers)) as pool:
            probed = dict(zip(todo, pool.map(probe, todo), strict=True))
        kept = []
        for i, record in enumerate(records):
            outcome = probed.get(i, record)
            if isinstance(outcome, str):
                log.warning("skipping video %s: %s", record.video_id, outcome)
                self.result.skipped.append((record.video_id, outcome))
            else:
                kept.append(outcome)
        return kept


def default_prober(probe_durations: bool) -> VideoReader | None:
    """The reader that probes video files, or None when durations are not to be probed."""
    return PyAVReader(threads=1, max_duration=MAX_DURATION) if probe_durations else None
