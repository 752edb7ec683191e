"""Building a packet index: one demux pass over a video, no decoding.

The pass learns every frame's timestamp, the keyframes and the decode order. Where the
container stores every packet's bytes whole in the file (MP4, Matroska/WebM; checked byte for
byte with ``pread``), it also records each packet's place and the decoder's parameters, so
later reads can take the packets straight from the file (:mod:`dkp.data.decoding.packet_file`).
"""

from __future__ import annotations

import json
import os

import numpy as np
from av.container import InputContainer
from av.packet import Packet
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
    pts: list[int] = []  # in decode (demux) order
    dts: list[int] = []
    sizes: list[int] = []
    ends: list[int] = []
    keys: dict[int, int] = {}
    tb = float(stream.time_base)
    limit = None if max_duration is None else max_duration / tb
    first = None
    codec = codec_params(stream)
    places = PacketPlaces(path, avc_nal_length(stream)) if codec.size else None
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
                dts.append(NO_TS if packet.dts is None else packet.dts)
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
    return PacketIndex(
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
