"""Frame-accurate video decoding with PyAV (FFmpeg) and the least work.

A read maps each requested time to the frame a full sequential decode *shows* at that time
(:meth:`PacketIndex.frames_at`) and decodes only what that frame needs: from the keyframe at
or before it, forward to it (:meth:`PacketIndex.plan`).

Frames are returned as stored: a display matrix (the rotation phones record) is not applied,
so a portrait phone video arrives as landscape frames and ``VideoInfo`` gives the stored
width and height. Models see what the encoder saw, as other video loaders do (torchvision,
decord); rotate the files with FFmpeg first if a dataset mixes orientations.

Hostile files are refused before they cost much: ``max_pixels`` is checked on the header
(nothing is decoded or allocated at that size), ``max_duration`` on the header and on the
packets while they are indexed, ``max_decoded_frames`` before each read decodes anything.
"""

from __future__ import annotations

import functools
import itertools
import logging
import os
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction

import av
import numpy as np
from av.codec.context import CodecContext
from av.container import InputContainer
from av.packet import Packet
from av.stream import Discard
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from dkp.data.decoding.api import (
    DecodeStats,
    FileVersion,
    FrameRequest,
    StrPath,
    VideoDecodeError,
    VideoInfo,
    empty_outputs,
    file_version,
    reason,
)
from dkp.data.decoding.convert import FrameConverter
from dkp.data.decoding.frame_cache import FrameCache, key_in, serve_cached, store_cached
from dkp.data.decoding.index_builder import build_index
from dkp.data.decoding.index_store import IndexStore
from dkp.data.decoding.packet_file import PacketFile
from dkp.data.decoding.packet_index import CODEC_FIELDS, DecodePass, PacketIndex

log = logging.getLogger(__name__)

_THREAD_TYPES = ("NONE", "SLICE", "FRAME", "AUTO")
#: Decoded frames of one pass, from its keyframe on (a generator the read pulls from).
FramesOf = Callable[[DecodePass], Iterator[VideoFrame]]


class PyAVReader:
    """Reads frames by time with PyAV (FFmpeg), frame-accurately and with the least decoding.

    The first read of a file demuxes its packets once (no decoding) to learn every frame's
    timestamp and the keyframes; that index is kept in memory per file version and, with
    ``index_dir``, on disk for every other process and run (the data configs set it). Each
    read then makes one forward pass per stretch of requested frames: seek to the keyframe at
    or before the first of them and decode up to the last. Where the index found every packet
    stored whole in the file (MP4, Matroska/WebM; checked byte for byte), later reads skip the
    container: they read each pass's packets at their stored places and feed them to a decoder
    made from the stored parameters (``stats.file_reads``), which spares the 1-3 ms of opening
    a container (a header parse and a probe decode) and the demuxer's seeks. ``threads`` x
    DataLoader workers should not exceed the cores.

    ``skip_nonref`` has the decoder skip, on the way to a wanted frame, the frames no other
    frame references (H.264/HEVC non-reference B-frames): they cannot change any later frame,
    so the output is the same with less work, and ``stats.decoded_frames`` counts only what
    the decoder output. Off by default; the data configs turn it on.
    """

    #: Frames of the packet indexes kept in memory (LRU, 56 bytes each): a small dataset's all,
    #: so later epochs skip even the index files, and a few hundred long videos' of a large one.
    _INDEX_FRAMES_KEPT = 1_000_000

    def __init__(
        self,
        threads: int = 1,
        thread_type: str = "AUTO",
        cache: FrameCache | None = None,
        max_pixels: int | None = 8192 * 4320,
        max_decoded_frames: int | None = None,
        max_duration: float | None = None,
        skip_nonref: bool = False,
        index_dir: StrPath | None = None,
    ) -> None:
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0: FFmpeg picks), got {threads}")
        if thread_type.upper() not in _THREAD_TYPES:
            raise ValueError(f"thread_type must be one of {_THREAD_TYPES}, got {thread_type!r}")
        self.threads = threads
        self.thread_type = thread_type.upper()
        self.cache = cache
        self.max_pixels = max_pixels
        self.max_decoded_frames = max_decoded_frames
        self.max_duration = max_duration
        self.skip_nonref = skip_nonref
        self.index_store = IndexStore(index_dir) if index_dir is not None else None
        self.stats = DecodeStats()
        self._converter = FrameConverter(threads, self.stats)
        self._indexes: OrderedDict[FileVersion, PacketIndex] = OrderedDict()
        self._index_frames = 0

    # --- the interface ------------------------------------------------------------------
    def probe(self, path: StrPath) -> VideoInfo:
        """Duration, frame rate, size and frame count from the header; packets if it lacks them."""
        version = file_version(path)
        with self._open(path) as (container, stream):
            duration = _header_duration(container, stream)
            num_frames = stream.frames or None
            if duration is None:
                index = self._index(version, container, stream)
                duration, num_frames = index.end, len(index.pts)
            self._check_duration(path, duration)
            rate = stream.average_rate
            return VideoInfo(
                duration=duration,
                fps=float(rate) if rate else None,
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                num_frames=num_frames,
            )

    def read(self, path: StrPath, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        """The frames shown at each request's times, resized; one array per request."""
        requests = list(requests)
        version = file_version(path)
        outputs = empty_outputs(requests)
        if not any(r.times for r in requests):
            return outputs
        key_of = key_in(version)
        with self._source(version) as (index, frames_of):
            frame_pts = [index.frames_at(r.times) for r in requests]
            wanted = serve_cached(self.cache, key_of, requests, frame_pts, outputs, self.stats)
            for pts, frame in self._shown(path, index, sorted(wanted), frames_of):
                self._converter.deliver(frame, wanted[pts], outputs)
        store_cached(self.cache, key_of, wanted, outputs)
        return outputs

    def frames(self, path: StrPath, times: Sequence[float]) -> list[VideoFrame]:
        """The decoded frame shown at each of ``times``, as PyAV frames (not converted), for
        callers that convert frames themselves; same work and checks as :meth:`read`."""
        version = file_version(path)
        with self._source(version) as (index, frames_of):
            pts = index.frames_at(times).tolist()
            shown = dict(self._shown(path, index, sorted(set(pts)), frames_of))
        return [shown[p] for p in pts]

    # --- packet indexes -----------------------------------------------------------------
    def has_stored_index(self, path: StrPath) -> bool:
        """Whether the packet index of this version of ``path`` is on disk (or in memory)."""
        try:
            version = file_version(path)
        except VideoDecodeError:
            return False
        if version in self._indexes:
            return True
        return self.index_store is not None and self.index_store.path_for(version).exists()

    def ensure_index(self, path: StrPath) -> bool:
        """Make sure ``path`` has its packet index (stored, with ``index_dir``); True if this
        call built it. Raises :class:`VideoDecodeError` if the video cannot be indexed."""
        version = file_version(path)
        if self._known_index(version) is not None:
            return False
        with self._open(path) as (container, stream):
            index = self._index(version, container, stream)
        self._check_duration(path, index.end)
        return True

    def _known_index(self, version: FileVersion) -> PacketIndex | None:
        """The index of ``version`` kept in memory or stored on disk, or None."""
        index = self._indexes.get(version)
        if index is None:
            index = self._stored_index(version)
            if index is not None:
                self._keep(version, index)
        else:
            self._indexes.move_to_end(version)
        return index

    def _index(
        self, version: FileVersion, container: InputContainer, stream: VideoStream
    ) -> PacketIndex:
        """The index of ``version``: known, or built by a demux pass (and stored)."""
        index = self._known_index(version)
        if index is None:
            index = build_index(version[0], container, stream, self.max_duration)
            self.stats.indexed_files += 1
            if self.index_store is not None:
                self.index_store.save(version, index.to_arrays())
            self._keep(version, index)
        return index

    def _keep(self, version: FileVersion, index: PacketIndex) -> None:
        """Keep ``index`` in memory, dropping the least recently used beyond the frame bound."""
        self._indexes[version] = index
        self._index_frames += len(index.pts)
        while self._index_frames > self._INDEX_FRAMES_KEPT and len(self._indexes) > 1:
            self._index_frames -= len(self._indexes.popitem(last=False)[1].pts)

    def _stored_index(self, version: FileVersion) -> PacketIndex | None:
        arrays = self.index_store.load(version) if self.index_store is not None else None
        if arrays is None:
            return None
        try:
            return PacketIndex.from_arrays(arrays)
        except ValueError as exc:
            log.warning("%s: bad packet index (%s); rebuilding it", version[0], exc)
            return None

    # --- one read -----------------------------------------------------------------------
    @contextmanager
    def _source(self, version: FileVersion) -> Iterator[tuple[PacketIndex, FramesOf]]:
        """The video's index and where its passes' frames come from: its packets read straight
        from the file where the index allows, else the demuxer."""
        path = version[0]
        index = self._known_index(version)
        if index is not None and index.file_reads:
            self.stats.file_reads += 1
            with self._packet_file(path, index) as packets:
                yield index, functools.partial(self._frames_read, path, packets)
        else:
            with self._open(path) as (container, stream):
                index = self._index(version, container, stream)
                yield index, functools.partial(self._frames_from, path, container, stream, index)

    def _shown(
        self, path: StrPath, index: PacketIndex, targets: list[int], frames_of: FramesOf
    ) -> Iterator[tuple[int, VideoFrame]]:
        """Each target timestamp (ascending) with the frame shown at it, one forward pass per
        stretch of targets; the limits are checked before anything is decoded."""
        self._check_duration(path, index.end)
        passes = index.plan(targets)
        needed = index.frames_decoded(passes)
        if self.max_decoded_frames is not None and needed > self.max_decoded_frames:
            raise VideoDecodeError(
                path, f"needs {needed} decoded frames, over the limit {self.max_decoded_frames}"
            )
        for step in passes:
            yield from _shown_frames(frames_of(step), step.targets)

    @contextmanager
    def _packet_file(self, path: StrPath, index: PacketIndex) -> Iterator[PacketFile]:
        """``path`` opened for reading packets at the places ``index`` holds, with a decoder
        made from its stored parameters; every FFmpeg/OS error turned into ours."""
        params = index.codec_params
        self._check_pixels(path, params["width"], params["height"])
        try:
            with open(path, "rb") as file:
                codec = av.CodecContext.create(params["name"], "r")
                for field in CODEC_FIELDS:
                    setattr(codec, field, params[field])
                codec.extradata = bytes.fromhex(params["extradata"]) or None
                codec.thread_type = self.thread_type
                codec.thread_count = self.threads
                yield PacketFile(path, file, codec, index, Fraction(*params["time_base"]))
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoDecodeError(path, reason(exc)) from exc

    @contextmanager
    def _open(self, path: StrPath) -> Iterator[tuple[InputContainer, VideoStream]]:
        """Open ``path`` for its first video stream; turn every FFmpeg/OS error into ours."""
        try:
            with av.open(os.fspath(path), metadata_errors="ignore") as container:
                if not container.streams.video:
                    raise VideoDecodeError(path, "no video stream")
                stream = container.streams.video[0]
                ctx = stream.codec_context
                if ctx is None or not ctx.width or not ctx.height:
                    # FFmpeg found a stream but not its codec parameters (cut short, unknown).
                    raise VideoDecodeError(path, "video stream without a known codec or size")
                self._check_pixels(path, ctx.width, ctx.height)
                for other in container.streams:
                    if other.index != stream.index:
                        other.discard = Discard.all  # the demuxer skips their data entirely
                stream.thread_type = self.thread_type
                stream.thread_count = self.threads
                yield container, stream
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoDecodeError(path, reason(exc)) from exc

    def _check_pixels(self, path: StrPath, width: int, height: int) -> None:
        if self.max_pixels is not None and width * height > self.max_pixels:
            raise VideoDecodeError(
                path, f"resolution {width}x{height} exceeds max_pixels={self.max_pixels}"
            )

    def _check_duration(self, path: StrPath, duration: float) -> None:
        if self.max_duration is not None and not duration <= self.max_duration:
            raise VideoDecodeError(
                path, f"duration {duration:g} s exceeds max_duration={self.max_duration:g} s"
            )

    def _frames_from(
        self,
        path: StrPath,
        container: InputContainer,
        stream: VideoStream,
        index: PacketIndex,
        step: DecodePass,
    ) -> Iterator[VideoFrame]:
        """Decoded frames of ``step`` from its keyframe on; seeks from the start if the demuxer
        misses the keyframe."""
        key = step.key
        k = int(np.searchsorted(index.key_pts, key))
        # Its presentation time lands most demuxers on the keyframe itself; its decode time
        # (earlier, with B-frames) is the fallback for those that index by it, then the start.
        for seek_ts in dict.fromkeys((key, int(index.key_seek[k]), int(index.key_seek[0]))):
            container.seek(seek_ts, backward=True, stream=stream)
            self.stats.seeks += 1
            packets = container.demux(stream)
            first = None
            for packet in packets:  # a demuxer may land early: skip packets, undecoded, to ours
                if packet.is_keyframe and packet.pts is not None and packet.pts >= key:
                    first = packet
                    break
                self.stats.skipped_packets += 1
            if first is None or first.pts != key:  # overshot, or hit the end: retry earlier
                continue
            packets = itertools.chain([first], packets)
            yield from self._decode(path, stream.codec_context, packets, step.targets)
            return
        raise VideoDecodeError(path, f"cannot seek to the keyframe at timestamp {key}")

    def _frames_read(
        self, path: StrPath, packets: PacketFile, step: DecodePass
    ) -> Iterator[VideoFrame]:
        """Decoded frames of ``step`` from its keyframe on, its packets read from the file;
        with ``skip_nonref``, never-referenced pictures other than the targets are left out
        before the decoder (which would otherwise parse each one to skip it)."""
        self.stats.seeks += 1
        packets.codec.flush_buffers()  # the previous pass drained it
        targets = set(step.targets) if self.skip_nonref else None
        chunk = packets.read(step.first, step.last, targets)
        self.stats.unreferenced_packets += step.last - step.first + 1 - len(chunk)
        yield from self._decode(path, packets.codec, chunk, step.targets)

    def _decode(
        self, path: StrPath, codec: CodecContext, packets: Iterable[Packet], targets: list[int]
    ) -> Iterator[VideoFrame]:
        """Decode ``packets`` until every target's packet has gone in, then drain the decoder.

        Every frame a target references precedes it in decode order, so the packets after the
        last target (which a reordering decoder would otherwise be fed before it gives the
        target back) are never decoded. With ``skip_nonref``, non-reference frames other than
        the targets are skipped too.
        """
        pending = set(targets)
        decoded = 0
        skip_mode = None
        for packet in packets:
            pts = packet.pts
            if self.skip_nonref:  # decided per packet: the decoder reads it as each one goes in
                mode = "DEFAULT" if pts is None or pts in pending else "NONREF"
                if mode != skip_mode:
                    codec.skip_frame = skip_mode = mode
            pending.discard(pts)
            # The final, empty packet of a demux drains the decoder too.
            frames = codec.decode(packet)
            if not pending:  # drained whole, so that stats count every frame decoded
                frames += codec.decode(None)
            decoded += len(frames)
            self.stats.decoded_frames += len(frames)
            for frame in frames:
                if frame.pts is None:
                    raise VideoDecodeError(path, "decoded a frame without a timestamp")
                yield frame
            if not pending:
                break
        if not decoded:
            raise VideoDecodeError(path, "the decoder returned no frames")


def _shown_frames(
    frames: Iterator[VideoFrame], targets: list[int]
) -> Iterator[tuple[int, VideoFrame]]:
    """Pair each target timestamp (ascending) with its frame, pulling no frame past the last."""
    pending = deque(targets)
    prev = None
    for frame in frames:
        # A target the decoder never output (damaged stream): the frame shown then is prev.
        while pending and frame.pts > pending[0]:
            yield pending.popleft(), prev if prev is not None else frame
        if pending and frame.pts == pending[0]:
            yield pending.popleft(), frame
        if not pending:
            return
        prev = frame
    for target in pending:
        yield target, prev


def _header_duration(container: InputContainer, stream: VideoStream) -> float | None:
    """Seconds from the first frame to the end, as the header says, or None."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        seconds = container.duration / av.time_base
        if "matroska" in container.format.name and stream.start_time and stream.time_base:
            # A Matroska segment's duration runs from timestamp 0, not from the first frame.
            seconds -= float(stream.start_time * stream.time_base)
        return seconds
    return None
