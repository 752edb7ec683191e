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
    "end": np.float64,
    "packet_pos": np.int64,
    "packet_size": np.int64,
    "packet_dts": np.int64,
    "packet_nonref": np.bool_,
    "codec": np.uint8,
}
FRAME_ARRAYS = ("pts", "decode_pos")
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


class DecodePass(NamedTuple):
    """One forward pass: the keyframe to start from, the frames wanted after it (ascending
    timestamps), and the places in decode order of its first and last packet."""

    key: int
    targets: list[int]
    first: int
    last: int


@dataclass(frozen=True)
class PacketIndex:
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
    packet_dts: np.ndarray  # int64 decode timestamp of each packet (NO_TS: none); or empty
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
        keys = self.key_pts[k]
        place = self.decode_pos[np.searchsorted(self.pts, np.concatenate([keys, targets]))]
        key_place, target_place = place[: len(targets)].tolist(), place[len(targets) :].tolist()
        passes: list[DecodePass] = []
        for key, target, first, last in zip(
            keys.tolist(), targets.tolist(), key_place, target_place, strict=True
        ):
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
        scalars_ok = a["end"].ndim == a["time_base"].ndim == 0
        shapes_ok = scalars_ok and all(a[x].shape == (n,) for x in FRAME_ARRAYS)
        if not (shapes_ok and n and k and a["key_seek"].shape == (k,)):
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
        if np.any(a["decode_pos"] < 0) or np.any(np.bincount(a["decode_pos"], minlength=n) != 1):
            raise ValueError("decode order is not a permutation")
        index = cls(**{name: (float(v) if v.ndim == 0 else v) for name, v in a.items()})
        if m:
            try:
                if index.codec_params["name"] not in FILE_READ_CODECS:
                    raise ValueError(f"codec {index.codec_params['name']!r}")
            except (UnicodeDecodeError, json.JSONDecodeError, TypeError, KeyError) as exc:
                raise ValueError(f"bad decoder parameters ({exc})") from exc
        return index

    def frames_decoded(self, passes: list[DecodePass]) -> int:
        """How many frames the decoder outputs to serve ``passes`` without skipping any."""
        return sum(p.last - p.first + 1 for p in passes)
