"""Reading a pass's packets straight from the file, at the places the packet index stored.

No container is opened and no demuxer seeks: the bytes are read (one read per pass when the
packets lie close together) and fed, with their timestamps, to a decoder made from the
parameters the index stored.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from fractions import Fraction
from typing import BinaryIO

from av.codec.context import CodecContext
from av.packet import Packet

from dkp.data.decoding.api import StrPath, VideoDecodeError
from dkp.data.decoding.packet_index import NO_TS, PacketIndex


class PacketFile:
    """A video file read by the packet places of its index, and the decoder for them."""

    #: Read a pass's packets with one read if the bytes between them are at most this many
    #: more than theirs (an interleaved audio track's), else one read per packet.
    _SPAN_SLACK = 1 << 16

    def __init__(
        self, path: StrPath, file: BinaryIO, codec: CodecContext, index: PacketIndex, tb: Fraction
    ) -> None:
        self.path, self.file, self.codec, self.index, self.time_base = path, file, codec, index, tb
        self.size = os.fstat(file.fileno()).st_size

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
        if stop > self.size:  # checked before any read: a damaged index may name any size
            raise VideoDecodeError(self.path, "file is shorter than its packet index says")
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
            packet.pts, packet.dts = pts[i], (None if dts[i] == NO_TS else dts[i])
            packet.time_base = self.time_base
            packets.append(packet)
        return packets
