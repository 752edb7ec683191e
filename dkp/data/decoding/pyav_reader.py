"""Frame-accurate video decoding with PyAV (FFmpeg) and the least work.

A read maps each requested time to the frame a full sequential decode *shows* at that time
(:meth:`PacketIndex.frames_at`) and decodes only what that frame needs: from the keyframe at
or before it, forward to it (:meth:`PacketIndex.plan`).

Frames are returned as stored: a display matrix (the rotation phones record) is not applied,
so a portrait phone video arrives as landscape frames and ``VideoInfo`` gives the stored
width and height. Models see what the encoder saw, as other video loaders do (torchvision,
decord); rotate the files with FFmpeg first if a dataset mixes orientations.

Hostile files are refused before they cost much: ``max_pixels`` is checked on the header
(nothing is decoded or allocated at that size), ``max_duration`` on the packets while they are
indexed, ``max_decoded_frames`` before each read decodes anything; a read feeds the decoder
no packet beyond its plan, so it is bounded in decoded frames and time.

Damaged files get a named problem, never a silent wrong frame: a file that cannot be read
raises :class:`VideoDecodeError`; a wanted frame the decoder does not output (damaged data) is
given the one a full decode shows in its place, the nearest earlier frame that decodes, with a
warning naming the file and the times; a header whose duration disagrees with the frames' span
is warned about (durations always come from the frames).
"""

from __future__ import annotations

import functools
import itertools
import logging
import operator
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from fractions import Fraction

import av
import numpy as np
from av.codec.context import CodecContext
from av.container import InputContainer
from av.packet import Packet
from av.stream import Discard, Disposition
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
#: Decoded frames of one pass, from its keyframe on (a generator the read pulls from), with
#: never-referenced pictures skipped or not.
FramesOf = Callable[[DecodePass, bool], Iterator[VideoFrame]]
#: Decoders that read ``skip_frame`` as each packet goes in, so it can change per packet;
#: others (libdav1d reads it once, when it opens) would also drop a wanted frame.
SKIP_FRAME_CODECS = frozenset({"h264", "hevc", "mpeg4", "vp8"})
#: Frames a read goes back from a frame the decoder does not output, for one it does.
_STEPS_BACK = 8
#: Video streams that are not a moving picture: cover art, thumbnail tracks, still images.
_NOT_MOVING = Disposition.attached_pic | Disposition.timed_thumbnails | Disposition.still_image


class PyAVReader:
    """Reads frames by time with PyAV (FFmpeg), frame-accurately and with the least decoding.

    The first read of a file demuxes its packets once (no decoding; an AVI with B-frames,
    whose frame times only a decode tells, is decoded once) to learn every frame's
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
    the decoder output. Off by default; the data configs turn it on. It applies only to the
    decoders of :data:`SKIP_FRAME_CODECS` (H.264, HEVC, MPEG-4 Part 2, VP8), which honour it
    packet by packet; for the others (AV1, ...) it is off, since skipping would also lose
    wanted frames.

    ``stream`` chooses the video stream: its index in the file (as ``ffprobe`` numbers
    streams), or None for the first video stream that is a moving picture, that is not an
    attached picture (cover art), a thumbnail track or a still image.
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
        stream: int | None = None,
    ) -> None:
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0: FFmpeg picks), got {threads}")
        if thread_type.upper() not in _THREAD_TYPES:
            raise ValueError(f"thread_type must be one of {_THREAD_TYPES}, got {thread_type!r}")
        if stream is not None and (isinstance(stream, bool) or not stream >= 0):
            raise ValueError(f"stream must be a stream index >= 0 or None, got {stream!r}")
        self.threads = threads
        self.thread_type = thread_type.upper()
        self.cache = cache
        self.max_pixels = max_pixels
        self.max_decoded_frames = max_decoded_frames
        self.max_duration = max_duration
        self.skip_nonref = skip_nonref
        self.stream = stream
        self.index_store = IndexStore(index_dir, stream) if index_dir is not None else None
        self.stats = DecodeStats()
        self._converter = FrameConverter(threads, self.stats)
        self._indexes: OrderedDict[FileVersion, PacketIndex] = OrderedDict()
        self._index_frames = 0

    # --- the interface ------------------------------------------------------------------
    def probe(self, path: StrPath) -> VideoInfo:
        """Duration and frame count from the frames (the packet index: a header may lie or
        be cut short), frame rate and size from the header."""
        version = file_version(path)
        with self._open(path) as (container, stream):
            index = self._index(version, container, stream)
            self._check_duration(path, index.end)
            rate = stream.average_rate
            return VideoInfo(
                duration=index.end,
                fps=float(rate) if rate else None,
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                num_frames=len(index.pts),
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
        """The index of ``version``: known, or built by a demux pass (and stored); a header
        whose duration disagrees with the frames' span is warned about as it is built."""
        index = self._known_index(version)
        if index is None:
            index = build_index(version[0], container, stream, self.max_duration)
            _warn_if_header_lies(version[0], _header_duration(container, stream), index.end)
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
        """Each target timestamp (ascending) with the frame shown at it.

        A target the decoder does not output (damaged data) gets what a full decode shows
        in its place, the nearest frame before it that decodes, and the read warns naming
        the times.
        """
        self._check_duration(path, index.end)
        missing = []
        for target, frame in self._decoded(path, index, targets, frames_of, self.skip_nonref):
            if frame is None:
                missing.append(target)
            else:
                yield target, frame
        if missing:
            self.stats.missing_frames += len(missing)
            log.warning(
                "%s: cannot decode the frames at %s s (damaged data); the frame shown before "
                "each is returned in its place",
                path,
                ", ".join(f"{(t - index.pts[0]) * index.time_base:.3f}" for t in missing),
            )
            for target in missing:
                yield target, self._shown_before(path, index, target, frames_of)

    def _decoded(
        self,
        path: StrPath,
        index: PacketIndex,
        targets: list[int],
        frames_of: FramesOf,
        skip: bool,
    ) -> Iterator[tuple[int, VideoFrame | None]]:
        """Each target (ascending) with its frame, or None where the decoder does not output
        it; one forward pass per stretch of them, the decoding limit checked first."""
        passes = index.plan(targets)
        needed = index.frames_decoded(passes)
        if self.max_decoded_frames is not None and needed > self.max_decoded_frames:
            raise VideoDecodeError(
                path, f"needs {needed} decoded frames, over the limit {self.max_decoded_frames}"
            )
        for step in passes:
            found = _target_frames(path, frames_of(step, skip), step.targets)
            for target in step.targets:
                yield target, found.get(target)

    def _shown_before(
        self, path: StrPath, index: PacketIndex, target: int, frames_of: FramesOf
    ) -> VideoFrame:
        """The frame a full decode shows in place of ``target``, which the decoder does not
        output: the nearest before it that it does (one pass each, without skipping)."""
        i = int(np.searchsorted(index.pts, target))
        for earlier in index.pts[max(i - _STEPS_BACK, 0) : i][::-1].tolist():
            ((_, frame),) = self._decoded(path, index, [earlier], frames_of, False)
            if frame is not None:
                return frame
        seconds = (target - index.pts[0]) * index.time_base
        raise VideoDecodeError(
            path, f"cannot decode the frame at {seconds:.3f} s nor the {_STEPS_BACK} before it"
        )

    @contextmanager
    def _packet_file(self, path: StrPath, index: PacketIndex) -> Iterator[PacketFile]:
        """``path`` opened for reading packets at the places ``index`` holds, with a decoder
        made from its stored parameters; every FFmpeg/OS error turned into ours."""
        params = index.codec_params
        self._check_pixels(path, params["width"], params["height"])
        try:
            codec = av.CodecContext.create(params["name"], "r")
            for field in CODEC_FIELDS:
                setattr(codec, field, params[field])
            codec.extradata = bytes.fromhex(params["extradata"]) or None
        except (av.error.FFmpegError, ValueError, TypeError, OverflowError) as exc:
            problem = f"bad decoder parameters in its packet index ({reason(exc)})"
            raise VideoDecodeError(path, problem) from exc
        codec.thread_type = self.thread_type
        codec.thread_count = self.threads
        try:
            with open(path, "rb") as file:
                yield PacketFile(path, file, codec, index, Fraction(*params["time_base"]))
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoDecodeError(path, reason(exc)) from exc

    @contextmanager
    def _open(self, path: StrPath) -> Iterator[tuple[InputContainer, VideoStream]]:
        """Open ``path`` for its video stream (``self.stream``); turn every FFmpeg/OS error
        into ours."""
        try:
            with av.open(os.fspath(path), metadata_errors="ignore") as container:
                stream = _video_stream(path, container, self.stream)
                ctx = stream.codec_context
                if ctx is None or not ctx.width or not ctx.height:
                    # FFmpeg found a stream but not its codec parameters (cut short, unknown).
                    raise VideoDecodeError(path, "video stream without a known codec or size")
                self._check_pixels(path, ctx.width, ctx.height)
                for other in container.streams:
                    if other.index != stream.index:
                        other.discard = Discard.all  # the demuxer skips their data entirely
                # Frame threads delay a decoder's output, which times an AVI's frames.
                avi = container.format.name == "avi" and self.thread_type in ("FRAME", "AUTO")
                stream.thread_type = "SLICE" if avi else self.thread_type
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
        skip: bool,
    ) -> Iterator[VideoFrame]:
        """Decoded frames of ``step`` from its keyframe on; seeks from the start if the demuxer
        misses the keyframe."""
        key = step.key
        k = int(np.searchsorted(index.key_pts, key))
        # The keyframe packet's own time: its presentation time, or its decode time where the
        # frames are timed by decode times (AVI: the presentation times are guesses).
        stamp = operator.attrgetter("dts" if index.decode_times else "pts")
        at = int(index.key_seek[k]) if index.decode_times else key
        # Its presentation time lands most demuxers on the keyframe itself; its decode time
        # (earlier, with B-frames) is the fallback for those that index by it, then the start.
        for seek_ts in dict.fromkeys((key, int(index.key_seek[k]), int(index.key_seek[0]))):
            container.seek(seek_ts, backward=True, stream=stream)
            self.stats.seeks += 1
            packets = container.demux(stream)
            first = None
            for packet in packets:  # a demuxer may land early: skip packets, undecoded, to ours
                if packet.is_keyframe and stamp(packet) is not None and stamp(packet) >= at:
                    first = packet
                    break
                self.stats.skipped_packets += 1
            if first is None or stamp(first) != at:  # overshot, or hit the end: retry earlier
                continue
            packets = itertools.chain([first], packets)
            planned = step.last - step.first + 1
            yield from self._decode(path, stream.codec_context, packets, index, step, planned, skip)
            return
        raise VideoDecodeError(path, f"cannot seek to the keyframe at timestamp {key}")

    def _frames_read(
        self, path: StrPath, packets: PacketFile, step: DecodePass, skip: bool
    ) -> Iterator[VideoFrame]:
        """Decoded frames of ``step`` from its keyframe on, its packets read from the file;
        with ``skip``, never-referenced pictures other than the targets are left out before
        the decoder (which would otherwise parse each one to skip it)."""
        self.stats.seeks += 1
        packets.codec.flush_buffers()  # the previous pass drained it
        chunk = packets.read(step.first, step.last, set(step.targets) if skip else None)
        self.stats.unreferenced_packets += step.last - step.first + 1 - len(chunk)
        yield from self._decode(path, packets.codec, chunk, packets.index, step, len(chunk), skip)

    def _decode(
        self,
        path: StrPath,
        codec: CodecContext,
        packets: Iterable[Packet],
        index: PacketIndex,
        step: DecodePass,
        planned: int,
        skip: bool,
    ) -> Iterator[VideoFrame]:
        """Decode the packets of ``step`` until every target's packet has gone in, then drain
        the decoder.

        Every frame a target references precedes it in decode order, so the packets after the
        last target (which a reordering decoder would otherwise be fed before it gives the
        target back) are never decoded; nor is any beyond the ``planned`` count (a demuxer
        that strays from the index). With ``skip`` (and a decoder of
        :data:`SKIP_FRAME_CODECS`), non-reference frames other than the targets are skipped
        too. A packet the decoder refuses (damaged data) is passed over, as a full decode
        does; its frame is then missing. Frames timed by decode times (AVI) get theirs: no
        packet holds a known frame there, so the ``planned`` packets all go in, unskipped.
        """
        pending = None if index.decode_times else set(step.targets)
        skip = skip and pending is not None and codec.name in SKIP_FRAME_CODECS
        decoded = 0
        fed: set[int | None] = set()
        skip_mode = None
        error = None
        shown = None  # the time of the frame output last (decode times)
        for packet in packets:
            pts = packet.pts
            if skip:  # decided per packet: the decoder reads it as each one goes in
                mode = "DEFAULT" if pts is None or pts in pending else "NONREF"
                if mode != skip_mode:
                    codec.skip_frame = skip_mode = mode
            if pending is not None:
                pending.discard(pts)
            if packet.size and not packet.is_discard:  # a frame's packets (fields) count once
                fed.add(pts)
            done = pending == set() or len(fed) >= planned
            # The final, empty packet of a demux drains the decoder too.
            frames, error = _decode_packet(codec, packet, error)
            if done:  # drained whole, so that stats count every frame decoded
                drained, error = _decode_packet(codec, None, error)
                frames += drained
            decoded += len(frames)
            self.stats.decoded_frames += len(frames)
            for frame in frames:
                if pending is None:
                    frame.pts = shown = _decode_time(index, frame, shown, step.key)
                if frame.pts is None:
                    raise VideoDecodeError(path, "decoded a frame without a timestamp")
                yield frame
            if done:
                break
        if not decoded:
            raise VideoDecodeError(
                path, "the decoder returned no frames" + (f" ({error})" if error else "")
            )


def _decode_time(index: PacketIndex, frame: VideoFrame, shown: int | None, key: int) -> int:
    """The time of a frame timed by decode times: that of the packet it came out for, or, as
    the decoder drains, the index's next after the frame ``shown`` before it in the pass (the
    keyframe's own if none was)."""
    if frame.dts is not None:
        return frame.dts
    if shown is None:
        return key
    i = int(np.searchsorted(index.pts, shown, side="right"))
    return int(index.pts[i]) if i < len(index.pts) else shown + 1


def _decode_packet(
    codec: CodecContext, packet: Packet | None, error: str | None
) -> tuple[list[VideoFrame], str | None]:
    """The frames ``codec`` outputs for ``packet`` (None: drain it), and the last error: a
    packet it refuses gives none."""
    try:
        return codec.decode(packet), error
    except av.error.FFmpegError as exc:
        return [], reason(exc)


def _target_frames(
    path: StrPath, frames: Iterator[VideoFrame], targets: list[int]
) -> dict[int, VideoFrame]:
    """The frames of ``targets`` among the frames of a pass. Every frame is checked to come
    out in timestamp order: otherwise the timestamps are not the frames'."""
    wanted = set(targets)
    found = {}
    prev = None
    for frame in frames:
        if prev is not None and frame.pts <= prev:
            raise VideoDecodeError(
                path,
                "decoded frames come out of timestamp order: the container's timestamps are "
                "not the frames'",
            )
        if frame.pts in wanted:
            found[frame.pts] = frame
        prev = frame.pts
    return found


def _video_stream(path: StrPath, container: InputContainer, wanted: int | None) -> VideoStream:
    """Stream ``wanted`` of ``container``, which must be a video stream; with None, the first
    video stream that is a moving picture (not cover art, a thumbnail track or a still)."""
    videos = list(container.streams.video)
    if wanted is not None:
        for stream in videos:
            if stream.index == wanted:
                return stream
        indices = [s.index for s in videos]
        raise VideoDecodeError(path, f"stream {wanted} is not a video stream (video: {indices})")
    for stream in videos:
        if not stream.disposition & _NOT_MOVING:
            return stream
    if videos:
        raise VideoDecodeError(path, "no video stream other than attached pictures or thumbnails")
    raise VideoDecodeError(path, "no video stream")


def _warn_if_header_lies(path: StrPath, header: float | None, span: float) -> None:
    """Warn when the header's duration clearly differs from the frames' span (a file cut
    short, a header that lies): the frames' span is what every duration uses."""
    if header is not None and abs(header - span) > max(0.25, 0.02 * span):
        log.warning(
            "%s: the header gives a duration of %.3f s but the frames span %.3f s; using the "
            "frames' span",
            path,
            header,
            span,
        )


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
