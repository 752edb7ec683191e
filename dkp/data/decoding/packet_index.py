"""A video's packet index: every frame's timestamp, its keyframes, and where its packets lie.

One demux pass (:mod:`dkp.data.decoding.index_builder`) makes it; :class:`IndexStore`
(:mod:`dkp.data.decoding.index_store`) keeps it on disk as named arrays. A read asks the
index which frame is shown at each time (:meth:`PacketIndex.frames_at`) and how to decode
them with the least work (:meth:`PacketIndex.plan`: one forward pass per keyframe).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from dkp.data.decoding.api import TIME_EPS

INDEX_ARRAYS = {  # what an index file stores; the frames' times follow from pts and time_base
    "pts": np.int64,
    "time_base": np.float64,
    "decode_pos": np.int64,
    "key_pts": np.int64,
    "key_seek": np.int64,
    "key_place": np.int64,
    "end": np.float64,
    "packet_pos": np.int64,
    "packet_size": np.int64,
    "packet_dts": np.int64,
    "packet_nonref": np.bool_,
    "codec": np.uint8,
    "decode_times": np.bool_,
}
FRAME_ARRAYS = ("pts", "decode_pos")
KEY_ARRAYS = ("key_pts", "key_seek", "key_place")
PACKET_ARRAYS = ("packet_pos", "packet_size", "packet_dts", "packet_nonref")
NO_TS = np.iinfo(np.int64).min  # a packet without a decode timestamp
#: Decoders whose every input is the packet bytes and the parameters :data:`CODEC_FIELDS`
#: name, so a packet read from the file decodes exactly as the demuxed one.
FILE_READ_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1"})
CODEC_FIELDS = (
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


def _check_codec_params(params: dict) -> None:
    """ValueError unless ``params`` has the shape :func:`~.index_builder.codec_params` gives."""
    if params["name"] not in FILE_READ_CODECS:
        raise ValueError(f"codec {params['name']!r}")
    bytes.fromhex(params["extradata"])
    num, den = params["time_base"]
    if not all(type(v) is int and v > 0 for v in (num, den, params["width"], params["height"])):
        raise ValueError("time base or size is not positive integers")
    for field in CODEC_FIELDS:
        if not isinstance(params[field], int | str | None):
            raise ValueError(f"{field} is {params[field]!r}")


class DecodePass(NamedTuple):
    """One forward pass: the keyframe to start from, the frames wanted after it (ascending
    timestamps), and the places in decode order of the first and last packet it decodes."""

    key: int
    targets: list[int]
    first: int
    last: int


@dataclass(frozen=True)
class PacketIndex:
    """Every frame's timestamp and the keyframes to seek to, from one demux pass (no decoding
    but an AVI's with B-frames, see :mod:`~dkp.data.decoding.index_builder`).

    Where every packet's bytes lie in the file as the demuxer gives them (checked while
    indexing), it also holds their places and the decoder's parameters, so that later reads
    take the packets straight from the file: no container to open, no demuxer to seek.

    A container that stores no presentation times (AVI: FFmpeg guesses them, wrongly for
    B-frames) has ``decode_times``: a full decode shows each frame from the decode time of
    the packet that went in as the decoder output it, so ``pts`` holds those times and
    ``decode_pos`` that packet's place (ascending, not a permutation).
    """

    pts: np.ndarray  # int64 presentation timestamps of the shown frames, ascending
    time_base: float  # seconds per timestamp unit
    decode_pos: np.ndarray  # int64 place of each frame (aligned with pts) in decode order
    key_pts: np.ndarray  # int64 presentation timestamps of the keyframes, ascending
    key_seek: np.ndarray  # int64 decode timestamps of the keyframes (a fallback seek target)
    key_place: np.ndarray  # int64 decode place a pass from each keyframe starts at
    end: float  # seconds from the first frame to the end of the last frame
    packet_pos: np.ndarray  # int64 file offset of each packet's data, decode order; or empty
    packet_size: np.ndarray  # int64 bytes of each packet, decode order; or empty
    packet_dts: np.ndarray  # int64 decode timestamp of each packet (NO_TS: none); or empty
    packet_nonref: np.ndarray  # bool: a picture no other references (H.264 nal_ref_idc 0)
    codec: np.ndarray  # uint8 JSON of the decoder's name and parameters; or empty
    decode_times: bool = False  # frames timed by the packet their output followed (AVI)

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
        """The decoder's name, extradata, time base and :data:`CODEC_FIELDS`."""
        return json.loads(self.codec.tobytes())

    def frames_at(self, times: Sequence[float]) -> np.ndarray:
        """Timestamp of the frame shown at each time: the last one starting at or before it."""
        i = np.searchsorted(self.times, np.asarray(times, np.float64) + TIME_EPS, side="right")
        return self.pts[np.clip(i - 1, 0, len(self.pts) - 1)]

    def plan(self, targets: Sequence[int]) -> list[DecodePass]:
        """Group ascending frame timestamps into forward passes, one per keyframe before them.

        Targets after the same keyframe share a pass; each other keyframe gets its own seek,
        since decoding on from a previous stretch would also decode the frames that follow
        its last target in decode order.
        """
        targets = np.asarray(targets, np.int64)
        k = np.maximum(np.searchsorted(self.key_pts, targets, side="right") - 1, 0)
        keys, key_place = self.key_pts[k].tolist(), self.key_place[k].tolist()
        target_place = self.decode_pos[np.searchsorted(self.pts, targets)].tolist()
        passes: list[DecodePass] = []
        for key, target, first, last in zip(
            keys, targets.tolist(), key_place, target_place, strict=True
        ):
            last = max(first, last)
            if passes and passes[-1].key == key:
                passes[-1].targets.append(target)
                passes[-1] = passes[-1]._replace(last=max(passes[-1].last, last))
            else:
                passes.append(DecodePass(key, [target], first, last))
        return passes

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The index as named arrays, for :class:`~dkp.data.decoding.index_store.IndexStore`."""
        return {name: np.asarray(getattr(self, name)) for name in INDEX_ARRAYS}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PacketIndex:
        """The index :meth:`to_arrays` gave; ValueError if the arrays do not make one."""
        if set(arrays) != set(INDEX_ARRAYS):
            raise ValueError(f"arrays {sorted(arrays)}, expected {sorted(INDEX_ARRAYS)}")
        a = {name: np.asarray(arrays[name], dtype) for name, dtype in INDEX_ARRAYS.items()}
        n, k = len(a["pts"]), len(a["key_pts"])
        scalars_ok = a["end"].ndim == a["time_base"].ndim == a["decode_times"].ndim == 0
        if scalars_ok and not (0 < a["time_base"] < np.inf and 0 <= a["end"] < np.inf):
            raise ValueError("time base or end out of range")
        shapes_ok = scalars_ok and all(a[x].shape == (n,) for x in FRAME_ARRAYS)
        if not (shapes_ok and n and k and all(a[x].shape == (k,) for x in KEY_ARRAYS)):
            raise ValueError("inconsistent index arrays")
        if np.any(np.diff(a["pts"]) <= 0) or np.any(np.diff(a["key_pts"]) <= 0):
            raise ValueError("timestamps not ascending")
        m = len(a["packet_pos"])
        if (
            any(a[x].shape != (m,) for x in PACKET_ARRAYS)
            or m not in (0, n)
            or (m > 0) != (a["codec"].size > 0)
        ):
            raise ValueError("inconsistent packet arrays")
        if m and (np.any(a["packet_pos"] < 0) or np.any(a["packet_size"] <= 0)):
            raise ValueError("packets outside the file")
        pos, decode_times = a["decode_pos"], bool(a.pop("decode_times"))
        if decode_times:  # the packets' places as the frames came out: ascending
            if m or pos[0] < 0 or np.any(np.diff(pos) < 0):
                raise ValueError("decode-time frames out of decode order")
        elif np.any(pos < 0) or np.any(pos >= n) or np.any(np.bincount(pos, minlength=n) != 1):
            raise ValueError("decode order is not a permutation")
        if np.any(a["key_place"] < 0) or np.any(a["key_place"] > pos.max()):
            raise ValueError("keyframes outside the packets")
        scalars = {name: float(v) for name, v in a.items() if v.ndim == 0}
        index = cls(**{**a, **scalars}, decode_times=decode_times)
        if m:
            try:
                _check_codec_params(index.codec_params)
            except (UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError) as exc:
                raise ValueError(f"bad decoder parameters ({exc!r})") from exc
        return index

    def frames_decoded(self, passes: list[DecodePass]) -> int:
        """How many frames the decoder outputs to serve ``passes`` without skipping any."""
        return sum(p.last - p.first + 1 for p in passes)
