"""Packet indexes kept on disk, so each version of a video is demuxed once, not once per process.

A reader learns every frame's timestamp with a demux pass over the whole file; on a long video
that pass costs as much as decoding the few frames a sparse read wants. Every DataLoader
worker, DDP rank and run would repeat it. :class:`IndexFiles` keeps the result as one small
compressed ``.npz`` per (path, mtime, size), written atomically, so concurrent writers are
safe and a rewritten video never reuses a stale index.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: Bump when the stored arrays change meaning, so old files are ignored (and rewritten).
FORMAT_VERSION = 1

FileKey = tuple[str, int, int]  # (path, mtime_ns, size)


class IndexFiles:
    """A directory of packet indexes as named arrays, one file per video version."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self._warned = False

    def path_for(self, file_key: FileKey) -> Path:
        """The file holding the index of ``file_key`` (absolute path, mtime, size)."""
        path, mtime_ns, size = file_key
        name = f"{FORMAT_VERSION}\0{os.path.abspath(path)}\0{mtime_ns}\0{size}"
        return self.directory / f"{hashlib.sha1(name.encode()).hexdigest()}.npz"

    def load(self, file_key: FileKey) -> dict[str, np.ndarray] | None:
        """The stored arrays, or None if there are none or they cannot be read."""
        path = self.path_for(file_key)
        try:
            with np.load(path, allow_pickle=False) as stored:
                return {name: stored[name] for name in stored.files}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("%s: unreadable packet index (%s); rebuilding it", path, exc)
            return None

    def save(self, file_key: FileKey, arrays: dict[str, np.ndarray]) -> None:
        """Store ``arrays`` for ``file_key``; a directory that cannot be written is warned
        about once and then left alone (the index is still used in memory)."""
        target = self.path_for(file_key)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez_compressed(f, **arrays)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            if not self._warned:
                log.warning("cannot store packet indexes in %s (%s)", self.directory, exc)
                self._warned = True
