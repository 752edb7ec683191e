"""``dkp-data check``: open, index and probe-decode every video a data config lists.

Each file is measured once per version (path, size, mtime): its header (codec, pixel format,
duration, audio), its packet index (the frames' span, keyframes; stored where training reads
it, so a checked dataset starts training indexed) and a decode of spread keyframes and of
its last frame, which finds a file that cannot be decoded past some time. The facts go to
a report (:mod:`.report`) that a rerun reads back, measuring only the files that changed.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path

import av
import numpy as np

from dkp.data.decoding import FrameRequest, PyAVReader, VideoDecodeError, VideoReader
from dkp.data.decoding.api import reason
from dkp.data.decoding.pyav_reader import _header_duration, _video_stream
from dkp.data.preparation.index import packet_index
from dkp.data.preparation.listing import DatasetListing
from dkp.data.preparation.report import CheckReport, FileFacts, VideoEntry, judge
from dkp.data.preparation.workers import Crashed, in_parallel

log = logging.getLogger(__name__)

#: Keyframes decoded to find where a file stops decoding (and its last frame).
PROBED_KEYFRAMES = 8


def measure(path: str, reader: VideoReader, probes: int = PROBED_KEYFRAMES) -> FileFacts:
    """The facts of the file at ``path``; never raises for a bad file (its ``error`` says)."""
    began, cpu = time.perf_counter(), time.process_time()
    try:
        st = os.stat(path)
    except OSError as err:
        return FileFacts(0, 0, error=reason(err), error_kind="missing")
    facts = FileFacts(st.st_size, st.st_mtime_ns)
    if st.st_size == 0:
        facts.error, facts.error_kind = "the file is empty", "zero_length"
        return facts
    try:
        if isinstance(reader, PyAVReader):
            _measure_video(path, reader, probes, facts)
        else:  # a folder of frames: what the reader itself says
            info = reader.probe(path)
            facts.codec, facts.pixel_format = "images", "images"
            facts.width, facts.height, facts.fps = info.width, info.height, info.fps
            facts.frames, facts.duration = info.num_frames or 0, info.duration
    except VideoDecodeError as err:
        facts.error = err.reason
        facts.error_kind = "no_video_stream" if "no video stream" in err.reason else "unreadable"
    except Exception as err:  # a bug or a hostile file: name it, go on with the others
        facts.error, facts.error_kind = f"{type(err).__name__}: {err}", "unreadable"
    facts.seconds = time.perf_counter() - began
    facts.cpu_seconds = time.process_time() - cpu
    return facts


def _measure_video(path: str, reader: PyAVReader, probes: int, facts: FileFacts) -> None:
    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = _video_stream(path, container, reader.stream)
            ctx = stream.codec_context
            if ctx is None:
                raise VideoDecodeError(path, "video stream without a known codec")
            facts.codec, facts.pixel_format = ctx.name, ctx.pix_fmt or ""
            facts.width, facts.height = ctx.width, ctx.height
            facts.fps = float(stream.average_rate) if stream.average_rate else None
            facts.header_duration = _header_duration(container, stream)
            facts.audio = bool(container.streams.audio)
    except (av.error.FFmpegError, OSError) as err:
        raise VideoDecodeError(path, reason(err)) from err
    index = packet_index(reader, path)
    facts.frames, facts.duration = len(index.pts), index.end
    key_times = index.times[np.searchsorted(index.pts, index.key_pts)]
    facts.keyframes = len(key_times)
    facts.keyframe_gap = float(np.diff([*key_times, index.end]).max())
    probed = np.unique(np.linspace(0, len(key_times) - 1, min(probes, len(key_times))).round())
    times = [*key_times[probed.astype(int)].tolist(), float(index.times[-1])]
    good = None
    for t in sorted(set(times)):
        missing = reader.stats.missing_frames
        try:
            reader.read(path, [FrameRequest((t,), 16, 16)])
        except VideoDecodeError as err:
            facts.decode_error = err.reason
        else:
            if reader.stats.missing_frames == missing:
                good = t
                continue
            facts.decode_error = f"damaged data at {t:.2f} s"
        facts.decodes_to = 0.0 if good is None else good
        return


def check_dataset(
    listing: DatasetListing,
    report_path: str | os.PathLike,
    workers: int = 0,
    probes: int = PROBED_KEYFRAMES,
    progress: bool = True,
) -> tuple[CheckReport, int]:
    """Check every video of ``listing`` into the report at ``report_path`` (read back first:
    files whose path, size and mtime it already has are not measured again); returns the
    report and how many files were measured."""
    began = time.perf_counter()
    reader = listing.reader
    limits = ("max_pixels", "max_duration", "max_decoded_frames", "stream")
    settings = {"probed_keyframes": probes, **{k: getattr(reader, k, None) for k in limits}}
    old = _earlier(report_path, settings)
    report = CheckReport(missing=dict(listing.missing), settings=settings)
    todo = []
    for path, video in listing.videos.items():
        known = old.get(path)
        try:
            st = os.stat(path)
            current = known is not None and (st.st_size, st.st_mtime_ns) == (
                known.facts.size,
                known.facts.mtime_ns,
            )
        except OSError:
            current = False
        if current:
            report.entries[path] = _entry(path, video.ids, known.facts, video.duration)
        else:
            todo.append(path)
    job = functools.partial(measure, reader=listing.reader, probes=probes)
    durations = {p: v.duration for p, v in listing.videos.items()}

    def save() -> None:
        report.seconds = time.perf_counter() - began
        report.save(report_path)

    for path, facts in in_parallel(job, todo, workers, "checking", save, progress=progress):
        if isinstance(facts, Crashed):
            facts = FileFacts(0, 0, error=str(facts), error_kind="unreadable")
        report.entries[path] = _entry(path, listing.videos[path].ids, facts, durations[path])
    report.entries = {p: report.entries[p] for p in listing.videos}  # the listing's order
    save()
    return report, len(todo)


def _entry(path: str, ids: list[str], facts: FileFacts, annotated: float | None) -> VideoEntry:
    return VideoEntry(path, ids, facts, judge(facts, annotated))


def _earlier(report_path: str | os.PathLike, settings: dict) -> dict[str, VideoEntry]:
    """The entries of an earlier report at ``report_path`` made with the same ``settings``."""
    if not Path(report_path).exists():
        return {}
    try:
        old = CheckReport.load(report_path)
    except ValueError as err:
        log.warning("%s; checking every video again", err)
        return {}
    if old.settings != settings:
        log.info("%s was made with other settings; checking every video again", report_path)
        return {}
    return old.entries
