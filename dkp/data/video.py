"""Frame-accurate video decoding with the least work: times in seconds in, resized RGB frames out.

A reader maps each requested time to the frame a full sequential decode *shows* at that time
and decodes only what that frame needs: from the keyframe at or before it, forward to it.
Frame indices and stream timestamps never leave this module.

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
import json
import logging
import os
import re
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol

import av
import numpy as np
from av.codec.context import CodecContext
from av.container import InputContainer
from av.packet import Packet
from av.stream import Discard
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream
from PIL import Image

from dkp.data.index_files import FileKey, IndexFiles

StrPath = str | os.PathLike
log = logging.getLogger(__name__)

# Tolerance for the float rounding of a requested time that is exactly a frame's start.
TIME_EPS = 1e-6
_BILINEAR = Image.Resampling.BILINEAR
_THREAD_TYPES = ("NONE", "SLICE", "FRAME", "AUTO")


class VideoDecodeError(RuntimeError):
    """A video could not be read; str() names the file and the reason."""

    def __init__(self, path: StrPath, reason: str) -> None:
        super().__init__(path, reason)  # args round-trip through pickle (DataLoader workers)
        self.path = os.fspath(path)
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class VideoInfo:
    """What a video's header (or, failing that, its packets) says about it.

    ``duration`` runs from the first frame's presentation time to the end of the last frame.
    """

    duration: float
    fps: float | None
    width: int
    height: int
    num_frames: int | None


@dataclass(frozen=True)
class FrameRequest:
    """Frames wanted at ``times`` (seconds from the first frame, any order), resized to h x w."""

    times: tuple[float, ...]
    height: int
    width: int

    def __post_init__(self) -> None:
        times = tuple(float(t) for t in self.times)
        if any(t != t for t in times):
            raise ValueError("FrameRequest times must not be NaN")
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"FrameRequest size must be positive, got {self.height}x{self.width}")
        object.__setattr__(self, "times", times)


class VideoReader(Protocol):
    """Decodes frames by time; one uint8 RGB array (len(times), h, w, 3) per request."""

    def probe(self, path: StrPath) -> VideoInfo: ...

    def read(self, path: StrPath, requests: Sequence[FrameRequest]) -> list[np.ndarray]: ...


@dataclass
class DecodeStats:
    """Cumulative work counters of a reader, for tests and benchmarks."""

    decoded_frames: int = 0
    seeks: int = 0
    skipped_packets: int = 0  # demuxed after a seek that landed before the wanted keyframe
    unreferenced_packets: int = 0  # never-referenced pictures a file read left out (skip_nonref)
    indexed_files: int = 0  # demux passes made to index a file (not found in memory or on disk)
    file_reads: int = 0  # reads that took the packets straight from the file, not the demuxer
    cache_hits: int = 0


CacheKey = tuple[str, int, int, int, int, int]


class FrameCache:
    """LRU cache of decoded, resized frames, bounded in bytes.

    Keys are (path, mtime_ns, size, presentation timestamp, height, width), so a file that is
    rewritten never serves stale frames. Cached arrays are read-only; readers copy out of them.
    """

    def __init__(self, max_bytes: int = 512 * 2**20) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._frames: OrderedDict[CacheKey, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self._frames)

    def get(self, key: CacheKey) -> np.ndarray | None:
        """The cached frame for ``key`` (marking it most recently used), or None."""
        frame = self._frames.get(key)
        if frame is not None:
            self._frames.move_to_end(key)
        return frame

    def put(self, key: CacheKey, frame: np.ndarray) -> None:
        """Store ``frame``, evicting the least recently used frames beyond the byte bound."""
        if frame.nbytes > self.max_bytes:
            return
        old = self._frames.pop(key, None)
        if old is not None:
            self.nbytes -= old.nbytes
        frame.setflags(write=False)
        self._frames[key] = frame
        self.nbytes += frame.nbytes
        while self.nbytes > self.max_bytes:
            _, evicted = self._frames.popitem(last=False)
            self.nbytes -= evicted.nbytes

    def clear(self) -> None:
        """Drop every cached frame."""
        self._frames.clear()
        self.nbytes = 0


# Where each wanted frame goes: frame timestamp -> (height, width) -> [(request, slot), ...].
_Wanted = dict[int, dict[tuple[int, int], list[tuple[int, int]]]]


def _file_key(path: StrPath) -> FileKey:
    """(path, mtime_ns, size): identifies one version of a file for the caches."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise VideoDecodeError(path, exc.strerror or str(exc)) from exc
    return os.fspath(path), st.st_mtime_ns, st.st_size


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _empty_outputs(requests: Sequence[FrameRequest]) -> list[np.ndarray]:
    return [np.empty((len(r.times), r.height, r.width, 3), np.uint8) for r in requests]


def _serve_cached(
    cache: FrameCache | None,
    cache_key: Callable[[int, int, int], CacheKey],
    requests: Sequence[FrameRequest],
    frame_ids: list[np.ndarray],
    outputs: list[np.ndarray],
    stats: DecodeStats,
) -> _Wanted:
    """Fill the slots the cache can serve; return the rest grouped by frame and size."""
    wanted: _Wanted = {}
    for r, (request, ids) in enumerate(zip(requests, frame_ids, strict=True)):
        h, w = request.height, request.width
        for slot, frame_id in enumerate(ids.tolist()):
            hit = cache.get(cache_key(frame_id, h, w)) if cache is not None else None
            if hit is not None:
                outputs[r][slot] = hit
                stats.cache_hits += 1
            else:
                wanted.setdefault(frame_id, {}).setdefault((h, w), []).append((r, slot))
    return wanted


def _store_cached(
    cache: FrameCache | None,
    cache_key: Callable[[int, int, int], CacheKey],
    wanted: _Wanted,
    outputs: list[np.ndarray],
) -> None:
    """Put the frames just decoded for ``wanted`` into the cache."""
    if cache is None:
        return
    for frame_id, sizes in wanted.items():
        for (h, w), slots in sizes.items():
            r, slot = slots[0]
            cache.put(cache_key(frame_id, h, w), outputs[r][slot].copy())


_INDEX_ARRAYS = {  # what an index file stores; the frames' times follow from pts and time_base
    "pts": np.int64,
    "time_base": np.float64,
    "decode_pos": np.int64,
    "key_pts": np.int64,
    "key_seek": np.int64,
    "end": np.float64,
    "packet_pos": np.int64,
    "packet_size": np.int64,
    "packet_dts": np.int64,
    "packet_nonref": np.bool_,
    "codec": np.uint8,
}
_FRAME_ARRAYS = ("pts", "decode_pos")
_PACKET_ARRAYS = ("packet_pos", "packet_size", "packet_dts", "packet_nonref")
_NO_TS = np.iinfo(np.int64).min  # a packet without a decode timestamp
#: Decoders whose every input is the packet bytes and the parameters :data:`_CODEC_FIELDS`
#: name, so a packet read from the file decodes exactly as the demuxed one.
_FILE_READ_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1"})
_CODEC_FIELDS = (
    "width",
    "height",
    "pix_fmt",
    "color_range",
    "colorspace",
    "color_primaries",
    "color_trc",
    "codec_tag",
    "bits_per_coded_sample",
)


class _Pass(NamedTuple):
    """One forward pass: the keyframe to start from, the frames wanted after it (ascending
    timestamps), and the places in decode order of its first and last packet."""

    key: int
    targets: list[int]
    first: int
    last: int


@dataclass(frozen=True)
class _Index:
    """Every frame's timestamp and the keyframes to seek to, from one demux pass (no decoding).

    Where every packet's bytes lie in the file as the demuxer gives them (checked while
    indexing), it also holds their places and the decoder's parameters, so that later reads
    take the packets straight from the file: no container to open, no demuxer to seek.
    """

    pts: np.ndarray  # int64 presentation timestamps of the shown frames, ascending
    time_base: float  # seconds per timestamp unit
    decode_pos: np.ndarray  # int64 place of each frame (aligned with pts) in decode order
    key_pts: np.ndarray  # int64 presentation timestamps of the keyframes, ascending
    key_seek: np.ndarray  # int64 decode timestamps of the keyframes (a fallback seek target)
    end: float  # seconds from the first frame to the end of the last frame
    packet_pos: np.ndarray  # int64 file offset of each packet's data, decode order; or empty
    packet_size: np.ndarray  # int64 bytes of each packet, decode order; or empty
    packet_dts: np.ndarray  # int64 decode timestamp of each packet (_NO_TS: none); or empty
    packet_nonref: np.ndarray  # bool: a picture no other references (H.264 nal_ref_idc 0)
    codec: np.ndarray  # uint8 JSON of the decoder's name and parameters; or empty

    @functools.cached_property
    def times(self) -> np.ndarray:
        """float64 seconds from the first frame, aligned with pts."""
        return (self.pts - self.pts[0]) * self.time_base

    @property
    def file_reads(self) -> bool:
        """Whether reads can take the packets straight from the file."""
        return len(self.packet_pos) > 0

    @functools.cached_property
    def decode_pts(self) -> np.ndarray:
        """Presentation timestamp of each packet, in decode order."""
        pts = np.empty_like(self.pts)
        pts[self.decode_pos] = self.pts
        return pts

    @functools.cached_property
    def codec_params(self) -> dict:
        """The decoder's name, extradata, time base and :data:`_CODEC_FIELDS`."""
        return json.loads(self.codec.tobytes())

    def frames_at(self, times: Sequence[float]) -> np.ndarray:
        """Timestamp of the frame shown at each time: the last one starting at or before it."""
        i = np.searchsorted(self.times, np.asarray(times, np.float64) + TIME_EPS, side="right")
        return self.pts[np.clip(i - 1, 0, len(self.pts) - 1)]

    def plan(self, targets: Sequence[int]) -> list[_Pass]:
        """Group ascending frame timestamps into forward passes, one per keyframe before them.

        Targets after the same keyframe share a pass; each other keyframe gets its own seek,
        since decoding on from a previous stretch would also decode the frames that follow
        its last target in decode order.
        """
        targets = np.asarray(targets, np.int64)
        k = np.maximum(np.searchsorted(self.key_pts, targets, side="right") - 1, 0)
        keys = self.key_pts[k]
        place = self.decode_pos[np.searchsorted(self.pts, np.concatenate([keys, targets]))]
        key_place, target_place = place[: len(targets)].tolist(), place[len(targets) :].tolist()
        passes: list[_Pass] = []
        for key, target, first, last in zip(
            keys.tolist(), targets.tolist(), key_place, target_place, strict=True
        ):
            if passes and passes[-1].key == key:
                passes[-1].targets.append(target)
                passes[-1] = passes[-1]._replace(last=max(passes[-1].last, last))
            else:
                passes.append(_Pass(key, [target], first, last))
        return passes

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The index as named arrays, for :class:`IndexFiles`."""
        return {name: np.asarray(getattr(self, name)) for name in _INDEX_ARRAYS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> _Index:
        """The index :meth:`to_arrays` gave; ValueError if the arrays do not make one."""
        if set(arrays) != set(_INDEX_ARRAYS):
            raise ValueError(f"arrays {sorted(arrays)}, expected {sorted(_INDEX_ARRAYS)}")
        a = {name: np.asarray(arrays[name], dtype) for name, dtype in _INDEX_ARRAYS.items()}
        n, k = len(a["pts"]), len(a["key_pts"])
        scalars_ok = a["end"].ndim == a["time_base"].ndim == 0
        shapes_ok = scalars_ok and all(a[x].shape == (n,) for x in _FRAME_ARRAYS)
        if not (shapes_ok and n and k and a["key_seek"].shape == (k,)):
            raise ValueError("inconsistent index arrays")
        if np.any(np.diff(a["pts"]) <= 0) or np.any(np.diff(a["key_pts"]) <= 0):
            raise ValueError("timestamps not ascending")
        m = len(a["packet_pos"])
        if (
            any(a[x].shape != (m,) for x in _PACKET_ARRAYS)
            or m not in (0, n)
            or (m > 0) != (a["codec"].size > 0)
        ):
            raise ValueError("inconsistent packet arrays")
        if m and (np.any(a["packet_pos"] < 0) or np.any(a["packet_size"] <= 0)):
            raise ValueError("packets outside the file")
        if np.any(a["decode_pos"] < 0) or np.any(np.bincount(a["decode_pos"], minlength=n) != 1):
            raise ValueError("decode order is not a permutation")
        index = cls(**{name: (float(v) if v.ndim == 0 else v) for name, v in a.items()})
        if m:
            try:
                if index.codec_params["name"] not in _FILE_READ_CODECS:
                    raise ValueError(f"codec {index.codec_params['name']!r}")
            except (UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError) as exc:
                raise ValueError(f"bad decoder parameters ({exc})") from exc
        return index

    def frames_decoded(self, passes: list[_Pass]) -> int:
        """How many frames the decoder outputs to serve ``passes`` without skipping any."""
        return sum(p.last - p.first + 1 for p in passes)


class _PacketPlaces:
    """Where each demuxed packet's bytes lie in the file, checked byte for byte: a container
    layer that stores them as they are (MP4, Matroska without lacing or compression) gives
    every one; any packet that is not there, or carries side data, rules file reads out."""

    _MAX_HEADER = 32  # bytes a container may put between a packet's position and its data

    def __init__(self, path: StrPath, nal_length: int | None) -> None:
        self.places: list[int] | None = []
        self.nonref: list[bool] = []
        self._nal_length = nal_length
        self._delta = 0
        # Read with pread, not mapped: a mapping would count the whole file in the peak RSS.
        try:
            self._fd: int | None = os.open(path, os.O_RDONLY)
        except OSError:
            self._fd, self.places = None, None

    def add(self, packet: Packet) -> None:
        """Find ``packet`` (a non-empty one) in the file, or give file reads up."""
        if self.places is None or self._fd is None:
            return
        pos, size = packet.pos, packet.size
        side_data = next(packet.iter_sidedata(), None) is not None
        if pos < 0 or side_data or packet.is_discard or packet.is_corrupt:
            self.places = None
            return
        data = bytes(packet)
        try:
            stored = os.pread(self._fd, size + self._MAX_HEADER, pos)
        except OSError:
            self.places = None
            return
        for delta in (self._delta, *range(self._MAX_HEADER)):
            if stored[delta : delta + size] == data:
                self._delta = delta
                self.places.append(pos + delta)
                self.nonref.append(
                    self._nal_length is not None and _unreferenced(data, self._nal_length)
                )
                return
        self.places = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _avc_nal_length(stream: VideoStream) -> int | None:
    """Bytes of each NAL unit's length prefix in H.264 packets (avcC extradata), else None."""
    extradata = stream.codec_context.extradata or b""
    if stream.codec_context.name != "h264" or len(extradata) < 7 or extradata[0] != 1:
        return None
    return (extradata[4] & 3) + 1


def _unreferenced(data: bytes, nal_length: int) -> bool:
    """Whether an H.264 access unit (length-prefixed NAL units) is a picture no other picture
    references: its slices carry nal_ref_idc 0, so decoding can leave it out."""
    i = 0
    while i + nal_length < len(data):
        header = data[i + nal_length]
        if header & 0x1F in (1, 5):  # a coded slice: all of a picture's share nal_ref_idc
            return header & 0x60 == 0
        i += nal_length + int.from_bytes(data[i : i + nal_length], "big")
    return False


def _codec_params(stream: VideoStream) -> np.ndarray:
    """The decoder's name and parameters as JSON bytes, or none if file reads cannot use it."""
    ctx = stream.codec_context
    if ctx.name not in _FILE_READ_CODECS or not stream.time_base:
        return np.empty(0, np.uint8)
    params = {field: getattr(ctx, field) for field in _CODEC_FIELDS}
    params.update(
        name=ctx.name,
        extradata=(ctx.extradata or b"").hex(),
        time_base=[stream.time_base.numerator, stream.time_base.denominator],
    )
    return np.frombuffer(json.dumps(params).encode(), np.uint8)


def _build_index(
    path: StrPath, container: InputContainer, stream: VideoStream, max_duration: float | None
) -> _Index:
    pts: list[int] = []  # in decode (demux) order
    dts: list[int] = []
    sizes: list[int] = []
    ends: list[int] = []
    keys: dict[int, int] = {}
    tb = float(stream.time_base)
    limit = None if max_duration is None else max_duration / tb
    first = None
    codec = _codec_params(stream)
    places = _PacketPlaces(path, _avc_nal_length(stream)) if codec.size else None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the flush packet demux yields at the end
                continue
            if packet.pts is None:
                raise VideoDecodeError(path, "packets without timestamps (raw elementary stream?)")
            first = packet.pts if first is None else min(first, packet.pts)
            if limit is not None and packet.pts - first > limit:  # stop before indexing it all
                raise VideoDecodeError(path, f"packets run past max_duration={max_duration:g} s")
            if packet.is_keyframe:
                keys.setdefault(packet.pts, packet.dts if packet.dts is not None else packet.pts)
            if places is not None:
                places.add(packet)
            if not packet.is_discard:  # discarded packets (edit lists) are decoded, never shown
                pts.append(packet.pts)
                dts.append(_NO_TS if packet.dts is None else packet.dts)
                sizes.append(packet.size)
                ends.append(packet.pts + (packet.duration or 0))
    finally:
        if places is not None:
            places.close()
    if not pts or not keys:
        raise VideoDecodeError(path, "no video frames")
    frame_pts, first_seen = np.unique(np.asarray(pts, np.int64), return_index=True)
    decode_pos = np.argsort(np.argsort(first_seen))  # rank of each frame's first packet
    last = max(ends)
    if last == frame_pts[-1] and len(frame_pts) > 1:  # no packet durations: assume the median
        last += int(np.median(np.diff(frame_pts)))
    key_pts = np.asarray(sorted(keys), np.int64)
    # File reads need one packet per frame (no repeated timestamps) found in the file.
    file_reads = places is not None and places.places is not None and len(frame_pts) == len(pts)
    packet_arrays = (places.places, sizes, dts) if file_reads else ([], [], [])
    packet_pos, packet_size, packet_dts = (np.asarray(a, np.int64) for a in packet_arrays)
    packet_nonref = np.asarray(places.nonref if file_reads else [], np.bool_)
    return _Index(
        pts=frame_pts,
        time_base=tb,
        decode_pos=decode_pos,
        key_pts=key_pts,
        key_seek=np.asarray([keys[k] for k in key_pts.tolist()], np.int64),
        end=(last - int(frame_pts[0])) * tb,
        packet_pos=packet_pos,
        packet_size=packet_size,
        packet_dts=packet_dts,
        packet_nonref=packet_nonref,
        codec=codec if file_reads else np.empty(0, np.uint8),
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


class _PacketFile:
    """A video file read by the packet places of its index, and the decoder for them."""

    #: Read a pass's packets with one read if the bytes between them are at most this many
    #: more than theirs (an interleaved audio track's), else one read per packet.
    _SPAN_SLACK = 1 << 16

    def __init__(
        self, path: StrPath, file: BinaryIO, codec: CodecContext, index: _Index, tb: Fraction
    ) -> None:
        self.path, self.file, self.codec, self.index, self.time_base = path, file, codec, index, tb

    def read(self, first: int, last: int, targets: Collection[int] | None = None) -> list[Packet]:
        """Packets ``first`` to ``last`` (decode order) with their timestamps; given the
        ``targets``' timestamps, without the never-referenced pictures other than them."""
        index = self.index
        pts = index.decode_pts[first : last + 1].tolist()
        kept = range(len(pts))
        if targets is not None:
            nonref = index.packet_nonref[first : last + 1].tolist()
            kept = [
                i for i, (p, n) in enumerate(zip(pts, nonref, strict=True)) if not n or p in targets
            ]
        places = index.packet_pos[first : last + 1].tolist()
        sizes = index.packet_size[first : last + 1].tolist()
        dts = index.packet_dts[first : last + 1].tolist()
        start = min(places[i] for i in kept)
        stop = max(places[i] + sizes[i] for i in kept)
        if stop - start <= sum(sizes) + self._SPAN_SLACK:
            self.file.seek(start)
            span = memoryview(self.file.read(stop - start))
            chunks = [span[places[i] - start : places[i] - start + sizes[i]] for i in kept]
        else:
            chunks = [os.pread(self.file.fileno(), sizes[i], places[i]) for i in kept]
        packets = []
        for i, chunk in zip(kept, chunks, strict=True):
            if len(chunk) != sizes[i]:
                raise VideoDecodeError(self.path, "file is shorter than its packet index says")
            packet = Packet(chunk)
            packet.pts, packet.dts = pts[i], (None if dts[i] == _NO_TS else dts[i])
            packet.time_base = self.time_base
            packets.append(packet)
        return packets


def _cache_key(file_key: FileKey, pts: int, h: int, w: int) -> CacheKey:
    return (*file_key, pts, h, w)


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
        self.index_files = IndexFiles(index_dir) if index_dir is not None else None
        self.stats = DecodeStats()
        self._indexes: OrderedDict[FileKey, _Index] = OrderedDict()
        self._index_frames = 0
        self._reformatters: dict[tuple[int, int], VideoReformatter] = {}

    def __getstate__(self) -> dict:
        """Pickled (to DataLoader workers, spawned DDP ranks) without its swscale contexts."""
        return {**self.__dict__, "_reformatters": {}}

    def probe(self, path: StrPath) -> VideoInfo:
        """Duration, frame rate, size and frame count from the header; packets if it lacks them."""
        file_key = _file_key(path)
        with self._open(path) as (container, stream):
            duration = _header_duration(container, stream)
            num_frames = stream.frames or None
            if duration is None:
                index = self._index(file_key, container, stream)
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

    def has_stored_index(self, path: StrPath) -> bool:
        """Whether the packet index of this version of ``path`` is on disk (or in memory)."""
        try:
            file_key = _file_key(path)
        except VideoDecodeError:
            return False
        if file_key in self._indexes:
            return True
        return self.index_files is not None and self.index_files.path_for(file_key).exists()

    def ensure_index(self, path: StrPath) -> bool:
        """Make sure ``path`` has its packet index (stored, with ``index_dir``); True if this
        call built it. Raises :class:`VideoDecodeError` if the video cannot be indexed."""
        file_key = _file_key(path)
        if self._known_index(file_key) is not None:
            return False
        with self._open(path) as (container, stream):
            index = self._index(file_key, container, stream)
        self._check_duration(path, index.end)
        return True

    def read(self, path: StrPath, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        """The frames shown at each request's times, resized; one array per request."""
        file_key = _file_key(path)
        outputs = _empty_outputs(requests)
        if not any(r.times for r in requests):
            return outputs
        index = self._known_index(file_key)
        if index is not None and index.file_reads:
            self.stats.file_reads += 1
            with self._packet_file(path, index) as packets:
                frames_from = functools.partial(self._frames_read, path, packets)
                wanted = self._read_into(file_key, index, requests, outputs, frames_from)
        else:
            with self._open(path) as (container, stream):
                index = self._index(file_key, container, stream)
                frames_from = functools.partial(self._frames_from, path, container, stream, index)
                wanted = self._read_into(file_key, index, requests, outputs, frames_from)
        _store_cached(self.cache, functools.partial(_cache_key, file_key), wanted, outputs)
        return outputs

    def _read_into(
        self,
        file_key: FileKey,
        index: _Index,
        requests: Sequence[FrameRequest],
        outputs: list[np.ndarray],
        frames_from: Callable[[_Pass], Iterator[VideoFrame]],
    ) -> _Wanted:
        """Fill ``outputs`` from the cache and from one forward pass per stretch of frames,
        ``frames_from(pass)`` decoding each; return what was decoded where."""
        path = file_key[0]
        self._check_duration(path, index.end)
        frame_pts = [index.frames_at(r.times) for r in requests]
        cache_key = functools.partial(_cache_key, file_key)
        wanted = _serve_cached(self.cache, cache_key, requests, frame_pts, outputs, self.stats)
        passes = index.plan(sorted(wanted))
        needed = index.frames_decoded(passes)
        if self.max_decoded_frames is not None and needed > self.max_decoded_frames:
            raise VideoDecodeError(
                path, f"needs {needed} decoded frames, over the limit {self.max_decoded_frames}"
            )
        for step in passes:
            for pts, frame in _shown_frames(frames_from(step), step.targets):
                _deliver(frame, wanted[pts], outputs, self._reformatters, self.threads)
        return wanted

    @contextmanager
    def _packet_file(self, path: StrPath, index: _Index) -> Iterator[_PacketFile]:
        """``path`` opened for reading packets at the places ``index`` holds, with a decoder
        made from its stored parameters; every FFmpeg/OS error turned into ours."""
        params = index.codec_params
        self._check_pixels(path, params["width"], params["height"])
        try:
            with open(path, "rb") as file:
                codec = av.CodecContext.create(params["name"], "r")
                for field in _CODEC_FIELDS:
                    setattr(codec, field, params[field])
                codec.extradata = bytes.fromhex(params["extradata"]) or None
                codec.thread_type = self.thread_type
                codec.thread_count = self.threads
                yield _PacketFile(path, file, codec, index, Fraction(*params["time_base"]))
        except (av.error.FFmpegError, OSError) as exc:
            raise VideoDecodeError(path, _reason(exc)) from exc

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
            raise VideoDecodeError(path, _reason(exc)) from exc

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

    def _known_index(self, file_key: FileKey) -> _Index | None:
        """The index of ``file_key`` kept in memory or stored on disk, or None."""
        index = self._indexes.get(file_key)
        if index is None:
            index = self._stored_index(file_key)
            if index is not None:
                self._keep(file_key, index)
        else:
            self._indexes.move_to_end(file_key)
        return index

    def _index(self, file_key: FileKey, container: InputContainer, stream: VideoStream) -> _Index:
        """The index of ``file_key``: known, or built by a demux pass (and stored)."""
        index = self._known_index(file_key)
        if index is None:
            index = _build_index(file_key[0], container, stream, self.max_duration)
            self.stats.indexed_files += 1
            if self.index_files is not None:
                self.index_files.save(file_key, index.to_arrays())
            self._keep(file_key, index)
        return index

    def _keep(self, file_key: FileKey, index: _Index) -> None:
        """Keep ``index`` in memory, dropping the least recently used beyond the frame bound."""
        self._indexes[file_key] = index
        self._index_frames += len(index.pts)
        while self._index_frames > self._INDEX_FRAMES_KEPT and len(self._indexes) > 1:
            self._index_frames -= len(self._indexes.popitem(last=False)[1].pts)

    def _stored_index(self, file_key: FileKey) -> _Index | None:
        arrays = self.index_files.load(file_key) if self.index_files is not None else None
        if arrays is None:
            return None
        try:
            return _Index.from_arrays(arrays)
        except ValueError as exc:
            log.warning("%s: bad packet index (%s); rebuilding it", file_key[0], exc)
            return None

    def _frames_from(
        self,
        path: StrPath,
        container: InputContainer,
        stream: VideoStream,
        index: _Index,
        step: _Pass,
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
        self, path: StrPath, packets: _PacketFile, step: _Pass
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


def _deliver(
    frame: VideoFrame,
    sizes: dict[tuple[int, int], list[tuple[int, int]]],
    outputs: list[np.ndarray],
    reformatters: dict[tuple[int, int], VideoReformatter],
    threads: int,
) -> None:
    """Convert ``frame`` once per wanted size (inside swscale) and copy it into its slots.

    One reformatter per output size keeps its swscale context between frames; a fresh one
    per frame (``frame.to_ndarray(width=..)``) spends most of a small conversion setting up.
    ``threads`` as the decoder's: swscale's default (one per core) makes a small frame's
    conversion 4x slower on 2 cores, and DataLoader workers already use the cores.
    """
    for (h, w), slots in sizes.items():
        reformatter = reformatters.get((h, w))
        if reformatter is None:
            reformatter = reformatters[(h, w)] = VideoReformatter()
        rgb = reformatter.reformat(frame, width=w, height=h, format="rgb24", threads=threads)
        rgb = rgb.to_ndarray()
        for r, slot in slots:
            outputs[r][slot] = rgb


def _natural_key(path: Path) -> list[int | str]:
    """Sort key putting img_2 before img_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


class FrameFolderReader:
    """Reads datasets shipped as a folder of image frames per video; frame i shows from i/fps."""

    def __init__(self, fps: float, cache: FrameCache | None = None, pattern: str = "*.jpg") -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = fps
        self.cache = cache
        self.pattern = pattern
        self.stats = DecodeStats()

    def probe(self, path: StrPath) -> VideoInfo:
        """Duration, rate, size (of the first image) and count of the frames in the folder."""
        files = self._files(path)
        try:
            with Image.open(files[0]) as image:
                width, height = image.size
        except (OSError, Image.DecompressionBombError) as exc:
            raise VideoDecodeError(files[0], _reason(exc)) from exc
        return VideoInfo(len(files) / self.fps, self.fps, width, height, len(files))

    def read(self, path: StrPath, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        """The frames shown at each request's times, resized; one array per request."""
        files = self._files(path)
        outputs = _empty_outputs(requests)
        last = len(files) - 1
        frame_ids = [
            np.floor((np.asarray(r.times) + TIME_EPS) * self.fps).clip(0, last).astype(np.int64)
            for r in requests
        ]
        versions = {i: _file_key(files[i]) for ids in frame_ids for i in set(ids.tolist())}

        def cache_key(i: int, h: int, w: int) -> CacheKey:
            return (*versions[i], i, h, w)

        wanted = _serve_cached(self.cache, cache_key, requests, frame_ids, outputs, self.stats)
        for i, sizes in wanted.items():
            image = self._decode(files[i])
            for (h, w), slots in sizes.items():
                # Pillow's bilinear widens its kernel when downscaling, so it antialiases.
                resized = image if image.size == (w, h) else image.resize((w, h), _BILINEAR)
                rgb = np.asarray(resized)
                for r, slot in slots:
                    outputs[r][slot] = rgb
        _store_cached(self.cache, cache_key, wanted, outputs)
        return outputs

    def _files(self, path: StrPath) -> list[Path]:
        folder = Path(path)
        if not folder.is_dir():
            raise VideoDecodeError(path, "no such frame folder")
        files = sorted((f for f in folder.glob(self.pattern) if f.is_file()), key=_natural_key)
        if not files:
            raise VideoDecodeError(path, f"no frames matching {self.pattern!r}")
        return files

    def _decode(self, file: Path) -> Image.Image:
        try:
            with Image.open(file) as image:
                rgb = image.convert("RGB")
        except (OSError, Image.DecompressionBombError) as exc:
            raise VideoDecodeError(file, _reason(exc)) from exc
        self.stats.decoded_frames += 1
        return rgb
