"""Packet indexes kept on disk, so each version of a video is demuxed once, not once per process.

A reader learns every frame's timestamp with a demux pass over the whole file; on a long video
that pass costs as much as decoding the few frames a sparse read wants. Every DataLoader
worker, DDP rank and run would repeat it. :class:`IndexStore` keeps the result as one small
file per (path, mtime, size), written atomically (:mod:`dkp.runtime.atomic`), so
concurrent writers are safe and a rewritten video never reuses a stale index.

A file is a short header naming each array's dtype and shape, then every array's bytes in one
zlib stream: loading it is one read and one inflate (about 0.1 ms for a two-minute video),
where an ``.npz`` (a zip member and a header parse per array) took 0.7 ms, a share of every
sparse read that needs it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from dkp.data.decoding.api import FileVersion
from dkp.runtime.atomic import write_atomic

log = logging.getLogger(__name__)

#: Bump when the stored arrays change meaning, so old files are ignored (and rewritten).
FORMAT_VERSION = 5
_MAGIC = b"DKPIDX2\n"
_HEADER_LEN = struct.Struct("<I")
_DTYPES = frozenset("?bBhHiIlLqQefd")  # plain numbers only: nothing a file could execute


def encode(arrays: dict[str, np.ndarray]) -> bytes:
    """``arrays`` as one index file's bytes."""
    arrays = {name: np.asarray(a) for name, a in arrays.items()}
    header = [[name, a.dtype.str, list(a.shape)] for name, a in arrays.items()]
    head = json.dumps(header).encode()
    body = zlib.compress(b"".join(a.tobytes() for a in arrays.values()), 1)
    return _MAGIC + _HEADER_LEN.pack(len(head)) + head + body


def decode(data: bytes) -> dict[str, np.ndarray]:
    """The arrays :func:`encode` stored (read-only); ValueError if ``data`` is not such a file."""
    start = len(_MAGIC) + _HEADER_LEN.size
    if not data.startswith(_MAGIC) or len(data) < start:
        raise ValueError("not a packet index file")
    (head_len,) = _HEADER_LEN.unpack_from(data, len(_MAGIC))
    try:
        header = json.loads(data[start : start + head_len])
        body = zlib.decompress(data[start + head_len :])
        arrays, offset = {}, 0
        for name, dtype_str, shape in header:
            dtype = np.dtype(dtype_str)
            if dtype.char not in _DTYPES:
                raise ValueError(f"array {name!r} has dtype {dtype_str}")
            if not all(isinstance(d, int) and d >= 0 for d in shape):
                raise ValueError(f"array {name!r} has shape {shape}")
            count = int(np.prod(shape, dtype=np.int64))
            arrays[name] = np.frombuffer(body, dtype, count, offset).reshape(tuple(shape))
            offset += count * dtype.itemsize
    except (TypeError, zlib.error, json.JSONDecodeError) as exc:
        raise ValueError(f"damaged packet index file ({exc})") from exc
    if offset != len(body):
        raise ValueError("packet index file has bytes its header does not name")
    return arrays


class IndexStore:
    """A directory of packet indexes as named arrays, one file per video version and stream
    choice (a reader's ``stream``: None for its default)."""

    def __init__(self, directory: str | os.PathLike, stream: int | None = None) -> None:
        self.directory = Path(directory)
        self.stream = stream
        self._warned = False

    def path_for(self, version: FileVersion) -> Path:
        """The file holding the index of ``version`` (absolute path, mtime, size)."""
        path, mtime_ns, size = version
        name = f"{FORMAT_VERSION}\0{os.path.abspath(path)}\0{mtime_ns}\0{size}\0{self.stream}"
        return self.directory / f"{hashlib.sha1(name.encode()).hexdigest()}.idx"

    def load(self, version: FileVersion) -> dict[str, np.ndarray] | None:
        """The stored arrays, or None if there are none or they cannot be read."""
        path = self.path_for(version)
        try:
            with open(path, "rb") as f:
                return decode(f.read())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable packet index (%s); rebuilding it", path, exc)
            return None

    def save(self, version: FileVersion, arrays: dict[str, np.ndarray]) -> None:
        """Store ``arrays`` for ``version``; a directory that cannot be written is warned
        about once and then left alone (the index is still used in memory)."""
        target = self.path_for(version)
        try:
            write_atomic(target, encode(arrays), durable=False)  # a cache: rebuilt if lost
        except OSError as exc:
            if not self._warned:
                log.warning("cannot store packet indexes in %s (%s)", self.directory, exc)
                self._warned = True
