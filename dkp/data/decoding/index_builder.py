"""Building a packet index: one demux pass over a video, no decoding.

The pass learns every frame's timestamp, the keyframes and the decode order. Where the
container stores every packet's bytes whole in the file (MP4, Matroska/WebM; checked byte for
byte with ``pread``), it also records each packet's place and the decoder's parameters, so
later reads can take the packets straight from the file (:mod:`dkp.data.decoding.packet_file`).
"""

from __future__ import annotations

import json
import os

import av
import numpy as np
from av.container import InputContainer
from av.packet import Packet
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from dkp.data.decoding.api import StrPath, VideoDecodeError
from dkp.data.decoding.h264 import avc_nal_length, unreferenced
from dkp.data.decoding.packet_index import CODEC_FIELDS, FILE_READ_CODECS, NO_TS, PacketIndex


class PacketPlaces:
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
                    self._nal_length is not None and unreferenced(data, self._nal_length)
                )
                return
        self.places = None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def codec_params(stream: VideoStream) -> np.ndarray:
    """The decoder's name and parameters as JSON bytes, or none if file reads cannot use it."""
    ctx = stream.codec_context
    if ctx.name not in FILE_READ_CODECS or not stream.time_base:
        return np.empty(0, np.uint8)
    params = {field: getattr(ctx, field) for field in CODEC_FIELDS}
    params.update(
        name=ctx.name,
        extradata=(ctx.extradata or b"").hex(),
        time_base=[stream.time_base.numerator, stream.time_base.denominator],
    )
    return np.frombuffer(json.dumps(params).encode(), np.uint8)


def build_index(
    path: StrPath, container: InputContainer, stream: VideoStream, max_duration: float | None
) -> PacketIndex:
    """Index ``stream`` with one demux pass, listing the frames a full decode shows: packets
    before the first keyframe (nothing to decode them from) and packets cut short at the end
    of a truncated file (flagged corrupt, last in decode order) are left out. ``end`` is the
    frames' span. An AVI's frames are timed by a decode alongside (:class:`DecodeTimes`)."""
    pts: list[int] = []  # in decode (demux) order
    dts: list[int] = []
    sizes: list[int] = []
    ends: list[int] = []
    corrupt: list[bool] = []
    keys: dict[int, tuple[int, int]] = {}  # keyframe pts -> (dts, place in decode order)
    tb = float(stream.time_base)
    limit = None if max_duration is None else max_duration / tb
    first = None
    timing = DecodeTimes(path, stream) if container.format.name == "avi" else None
    codec = np.empty(0, np.uint8) if timing is not None else codec_params(stream)
    places = PacketPlaces(path, avc_nal_length(stream)) if codec.size else None
    try:
        for packet in container.demux(stream):
            if packet.size == 0:  # the flush packet demux yields at the end
                continue
            if packet.pts is None or (timing is not None and packet.dts is None):
                raise VideoDecodeError(path, "packets without timestamps (raw elementary stream?)")
            if not keys and not packet.is_keyframe:
                continue
            first = packet.pts if first is None else min(first, packet.pts)
            if limit is not None and packet.pts - first > limit:  # stop before indexing it all
                raise VideoDecodeError(path, f"packets run past max_duration={max_duration:g} s")
            if packet.is_keyframe:
                key_dts = packet.dts if packet.dts is not None else packet.pts
                keys.setdefault(packet.pts, (key_dts, len(pts)))
            if places is not None:
                places.add(packet)
            if not packet.is_discard:  # discarded packets (edit lists) are decoded, never shown
                if timing is not None:
                    timing.add(packet, len(pts))
                pts.append(packet.pts)
                dts.append(NO_TS if packet.dts is None else packet.dts)
                sizes.append(packet.size)
                ends.append(packet.pts + (packet.duration or 0))
                corrupt.append(packet.is_corrupt)
    finally:
        if places is not None:
            places.close()
    while corrupt and corrupt[-1]:  # cut short by the end of the file
        if keys.get(pts[-1], (0, -1))[1] == len(pts) - 1:
            del keys[pts[-1]]
        for values in (pts, dts, sizes, ends, corrupt):
            values.pop()
    if not pts or not keys:
        raise VideoDecodeError(path, "no video frames")
    if timing is not None:
        return timing.index(tb, len(pts), sorted(keys.values(), key=lambda k: k[1]))
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
    return PacketIndex(
        pts=frame_pts,
        time_base=tb,
        decode_pos=decode_pos,
        key_pts=key_pts,
        key_seek=np.asarray([keys[k][0] for k in key_pts.tolist()], np.int64),
        # In frames' decode places: how many frames' first packets come before a keyframe's.
        key_place=np.searchsorted(np.sort(first_seen), [keys[k][1] for k in key_pts.tolist()]),
        end=(last - int(frame_pts[0])) * tb,
        packet_pos=packet_pos,
        packet_size=packet_size,
        packet_dts=packet_dts,
        packet_nonref=packet_nonref,
        codec=codec if file_reads else np.empty(0, np.uint8),
    )


class DecodeTimes:
    """The times a full decode gives the frames of a container without presentation times
    (AVI, where FFmpeg's guesses are wrong for B-frames): each frame is shown from the decode
    time of the packet that went in as the decoder output it (FFmpeg's best-effort
    timestamp). A decoder that outputs the first packet's frame at once (no B-frames) gives
    each packet's frame as it goes in, so nothing more is decoded; the others are decoded
    whole, once, while indexing."""

    def __init__(self, path: StrPath, stream: VideoStream) -> None:
        self.path, self.codec = path, stream.codec_context
        self.delayed: bool | None = None  # whether the decoder holds frames back; None: unknown
        #: Per frame in presentation order: its time (None: drained at the end), the place of
        #: the packet it came out after, and whether it is a keyframe's own.
        self.frames: list[tuple[int | None, int, bool]] = []
        self._last_place = 0

    def add(self, packet: Packet, place: int) -> None:
        """Take in ``packet``, the ``place``-th in decode order."""
        self._last_place = place
        if self.delayed is False:
            self.frames.append((packet.dts, place, packet.is_keyframe))
            return
        frames = self._decode(packet)
        if self.delayed is None:
            self.delayed = not frames
        self.frames += [(f.dts, place, f.key_frame) for f in frames]

    def index(self, tb: float, packets: int, keys: list[tuple[int, int]]) -> PacketIndex:
        """The index of the frames of the first ``packets`` taken in (the rest were cut
        short), with the keyframes' ``keys`` (decode time, place)."""
        if self.delayed:
            self.frames += [(None, self._last_place, f.key_frame) for f in self._decode(None)]
            self.frames = [(t, min(place, packets - 1), key) for t, place, key in self.frames]
        else:
            self.frames = [frame for frame in self.frames if frame[1] < packets]
        known = [t for t, _, _ in self.frames if t is not None]
        if not known:
            raise VideoDecodeError(self.path, "the decoder returned no frames")
        step = int(np.median(np.diff(known))) if len(known) > 1 else 1
        times, shown = [], known[0] - step
        for t, _, _ in self.frames:  # frames drained at the end follow one frame step apart
            shown = t if t is not None else shown + step
            times.append(shown)
        pts = np.asarray(times, np.int64)
        if np.any(np.diff(pts) <= 0):
            raise VideoDecodeError(self.path, "decoded frames come out of decode time order")
        places = np.asarray([place for _, place, _ in self.frames], np.int64)
        starts = {}  # a keyframe's frame, the first keyframe's out once its packet went in
        own = [i for i, (_, _, key) in enumerate(self.frames) if key]
        for key_dts, key_place in keys:
            i = next((i for i in own if places[i] >= key_place), None)
            if i is not None:
                starts.setdefault(int(pts[i]), (key_dts, key_place))
        key_pts = np.asarray(sorted(starts), np.int64)
        return PacketIndex(
            pts=pts,
            time_base=tb,
            decode_pos=places,
            key_pts=key_pts,
            key_seek=np.asarray([starts[k][0] for k in key_pts.tolist()], np.int64),
            key_place=np.asarray([starts[k][1] for k in key_pts.tolist()], np.int64),
            end=float((pts[-1] + step - pts[0]) * tb),
            packet_pos=np.empty(0, np.int64),
            packet_size=np.empty(0, np.int64),
            packet_dts=np.empty(0, np.int64),
            packet_nonref=np.empty(0, np.bool_),
            codec=np.empty(0, np.uint8),
            decode_times=True,
        )

    def _decode(self, packet: Packet | None) -> list[VideoFrame]:
        try:
            return self.codec.decode(packet)
        except av.error.FFmpegError:  # damaged data: a full decode passes it over too
            return []
