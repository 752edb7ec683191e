"""``dkp-data prepare``: re-encode every video once into a rendition made for sampled reading.

A rendition is H.264 at a short side chosen for the models, with a keyframe every few frames
(or every frame), no B-frames and no audio, its index at the front: reading any frame decodes
at most ``gop`` small frames, where an original may need hundreds of large ones. Every frame
of the original is kept, with its own timestamp (moved so the first frame is at 0, as the
reader counts time) and its own duration, so the frame shown at time t in the rendition is
the frame the reader shows at t in the original: the frames come from the reader itself
(:meth:`PyAVReader.frames`, one pass per keyframe of the original), and each rendition's
timestamps are checked against the original's index before it takes its place. Files are
written under a temporary name and renamed, so a killed run leaves whole renditions only;
the manifest (:mod:`.manifest`) is saved as it goes, and a rerun makes only what is missing
or whose original changed.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.frame import VideoFrame
from av.video.reformatter import Interpolation, VideoReformatter

from dkp.data.decoding import PyAVReader, VideoDecodeError
from dkp.data.decoding.packet_index import PacketIndex
from dkp.data.preparation.index import packet_index
from dkp.data.preparation.listing import DatasetListing
from dkp.data.preparation.manifest import (
    Manifest,
    Rendition,
    RenditionSettings,
    rendition_name,
    source_key,
)
from dkp.data.preparation.workers import Crashed, in_parallel

#: Decoded frames one pass over the original may hold (bytes, at 3 a pixel: a 4:2:0 frame
#: takes half), so that 250 frames of 720p are one pass; a longer keyframe interval is read
#: in pieces, each decoding again from its keyframe.
PASS_BYTES = 768 * 2**20
_TEMPORARY = ".tmp"


def rendition_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side at ``short_side`` (never upscaled), aspect kept,
    both even (as 4:2:0 chroma needs)."""
    scale = min(1.0, short_side / min(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def x264_options(settings: RenditionSettings) -> dict[str, str]:
    """libx264's options for ``settings``: a fixed keyframe interval, no B-frames."""
    gop = settings.gop
    options = {
        "preset": settings.preset,
        "crf": str(settings.crf),
        "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:open-gop=0",
    }
    if settings.tune:
        options["tune"] = settings.tune
    return options


class _Encoder:
    """Scales decoded frames and encodes them with the original's timestamps and durations."""

    def __init__(
        self,
        out: av.container.OutputContainer,
        first: VideoFrame,
        index: PacketIndex,
        size: tuple[int, int],
        settings: RenditionSettings,
    ) -> None:
        rate = len(index.pts) / index.end if index.end > 0 else 25.0
        self.time_base = first.time_base or Fraction(index.time_base).limit_denominator(2**31 - 1)
        self.out, self.index, self.size = out, index, size
        self.stream = out.add_stream(
            "libx264", rate=Fraction(rate).limit_denominator(1001), options=x264_options(settings)
        )
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = self.stream.codec_context.time_base = self.time_base
        self.stream.thread_count = 1
        ctx = self.stream.codec_context
        for name in ("colorspace", "color_primaries", "color_trc"):
            value = getattr(first, name, None)
            if value is not None:
                setattr(ctx, name, value)
        start = int(index.pts[0])
        self.pts = index.pts - start
        end = start + round(index.end / float(self.time_base))  # the last frame's end
        durations = np.diff([*index.pts, end]).tolist()
        self.durations = dict(zip(self.pts.tolist(), durations, strict=True))
        self.scaler = VideoReformatter()

    def write(self, frame: VideoFrame, position: int) -> None:
        width, height = self.size
        scaled = self.scaler.reformat(
            frame,
            width=width,
            height=height,
            format="yuv420p",
            interpolation=Interpolation.AREA,
            threads=1,
        )
        scaled.pts, scaled.time_base = int(self.pts[position]), self.time_base
        self._mux(self.stream.encode(scaled))

    def close(self) -> None:
        self._mux(self.stream.encode(None))

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            packet.duration = self.durations[packet.pts]
            self.out.mux(packet)


def _passes(index: PacketIndex, frames_per_pass: int) -> list[np.ndarray]:
    """Frame positions (presentation order) read together: from one keyframe to the next, in
    pieces of at most ``frames_per_pass``."""
    keys = np.searchsorted(index.pts, index.key_pts).tolist()
    bounds = [*keys, len(index.pts)]
    bounds[0] = 0  # frames before the first keyframe's time (open GOP) go with it
    passes = []
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        for piece in range(start, stop, frames_per_pass):
            passes.append(np.arange(piece, min(piece + frames_per_pass, stop)))
    return passes


def encode_rendition(
    source: str, target: Path, reader: PyAVReader, settings: RenditionSettings
) -> tuple[int, float, tuple[int, int]]:
    """Write the rendition of ``source`` to ``target`` (whole or not at all); returns its frame
    count, duration and size. Raises :class:`VideoDecodeError` naming the file."""
    index = packet_index(reader, source)
    info = reader.probe(source)
    size = rendition_size(info.width, info.height, settings.short_side)
    frames_per_pass = max(1, PASS_BYTES // (info.width * info.height * 3))
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}{_TEMPORARY}")
    try:
        with av.open(str(temporary), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            encoder = None
            for positions in _passes(index, frames_per_pass):
                decoded = reader.frames(source, index.times[positions].tolist())
                for position, frame in zip(positions.tolist(), decoded, strict=True):
                    if encoder is None:
                        encoder = _Encoder(out, frame, index, size, settings)
                    encoder.write(frame, position)
            encoder.close()
        _check_times(source, temporary, index)
        os.replace(temporary, target)
    except (av.error.FFmpegError, OSError) as err:
        raise VideoDecodeError(source, f"cannot write its rendition ({err})") from err
    finally:
        temporary.unlink(missing_ok=True)
    return len(index.pts), index.end, size


def _check_times(source: str, rendition: Path, index: PacketIndex) -> None:
    """Refuse a rendition whose frames' times or span differ from the original's."""
    with av.open(str(rendition)) as container:
        stream = container.streams.video[0]
        packets = [p for p in container.demux(stream) if p.size]
        tb = float(stream.time_base)
    pts = np.sort([p.pts for p in packets])
    end = (max(p.pts + p.duration for p in packets) - pts[0]) * tb
    times = (pts - pts[0]) * tb
    if len(times) != len(index.times) or np.abs(times - index.times).max() > 1e-6:
        raise VideoDecodeError(source, "its rendition's frame times differ from the original's")
    if abs(end - index.end) > 1e-6:
        raise VideoDecodeError(source, f"its rendition lasts {end:.6f} s, not {index.end:.6f} s")


def prepare_video(
    task: tuple[str, str], reader: PyAVReader, folder: str, settings: RenditionSettings
) -> Rendition:
    """Make the rendition of ``task`` (original, its name in the copy ``folder``), index it
    where training will look; never raises for a bad video (the entry's ``error`` says)."""
    source, name = task
    began, cpu = time.perf_counter(), time.process_time()
    try:
        st = os.stat(source)
    except OSError as err:
        return Rendition(name, 0, 0, error=f"{source}: {err.strerror}")
    entry = Rendition(name, st.st_size, st.st_mtime_ns)
    target = Path(folder) / name
    try:
        entry.frames, entry.duration, (entry.width, entry.height) = encode_rendition(
            source, target, reader, settings
        )
        entry.bytes = target.stat().st_size
        reader.ensure_index(target)
    except VideoDecodeError as err:
        entry.error = str(err)
    except Exception as err:  # a bug or a hostile file: name it, go on with the others
        entry.error = f"{source}: {type(err).__name__}: {err}"
    entry.seconds = time.perf_counter() - began
    entry.cpu_seconds = time.process_time() - cpu
    return entry


@dataclass
class PrepareSummary:
    """What a ``prepare_dataset`` run did."""

    made: int = 0
    kept: int = 0  # already prepared, original unchanged
    failed: int = 0
    seconds: float = 0.0
    source_bytes: int = 0  # of the originals made in this run
    rendition_bytes: int = 0
    failures: list[str] | None = None

    def line(self) -> str:
        ratio = self.rendition_bytes / self.source_bytes if self.source_bytes else 0.0
        return (
            f"{self.made} renditions made, {self.kept} already there, {self.failed} failed, "
            f"in {self.seconds:.1f} s; the new ones take {ratio:.1%} of their originals' bytes"
        )


def prepare_dataset(
    listing: DatasetListing,
    folder: str | os.PathLike,
    settings: RenditionSettings,
    workers: int = 0,
    force: bool = False,
    progress: bool = True,
) -> tuple[Manifest, PrepareSummary]:
    """Prepare every video of ``listing`` into the copy at ``folder``: make what it lacks, or
    what changed; ValueError if the copy was made with other settings (unless ``force``)."""
    began = time.perf_counter()
    settings.validate()
    if not isinstance(listing.reader, PyAVReader):
        raise ValueError("data.reader: only video files (PyAVReader) can be prepared")
    out = Path(folder)
    try:
        manifest = Manifest.load(out)
    except FileNotFoundError:
        manifest = Manifest(settings, root=listing.root)
    if manifest.settings != settings:
        if not force:
            old, new = asdict(manifest.settings), asdict(settings)
            differ = ", ".join(f"{k} {old[k]} (now {new[k]})" for k in old if old[k] != new[k])
            raise ValueError(
                f"{out}: its renditions were made with {differ}; prepare into another folder, "
                "or pass --force to make them again"
            )
        manifest = Manifest(settings, root=listing.root)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.rglob(f".*{_TEMPORARY}"):  # left by a killed run
        stale.unlink(missing_ok=True)
    summary = PrepareSummary(failures=[])
    todo = []
    for path in listing.videos:
        key = source_key(path, listing.root)
        entry = manifest.entries.get(key)
        if entry is not None and not entry.error and _unchanged(path, entry, out):
            summary.kept += 1
        else:
            todo.append((path, rendition_name(key)))
    job = functools.partial(
        prepare_video, reader=listing.reader, folder=str(out), settings=settings
    )
    done = in_parallel(
        job, todo, workers, "preparing", lambda: manifest.save(out), progress=progress
    )
    for (path, name), entry in done:
        if isinstance(entry, Crashed):
            entry = Rendition(name, 0, 0, error=f"{path}: {entry}")
        manifest.entries[source_key(path, listing.root)] = entry
        if entry.error:
            summary.failed += 1
            summary.failures.append(entry.error)
        else:
            summary.made += 1
            summary.source_bytes += entry.size
            summary.rendition_bytes += entry.bytes
    summary.seconds = time.perf_counter() - began
    return manifest, summary


def _unchanged(path: str, entry: Rendition, out: Path) -> bool:
    """Whether ``entry``'s rendition is there and its original has the same size and mtime."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    same = (st.st_size, st.st_mtime_ns) == (entry.size, entry.mtime_ns)
    return same and (out / entry.rendition).is_file()
