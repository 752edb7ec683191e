"""Files written whole or not at all: a temporary file in the same folder, then a rename.

A crash, a kill or a full disk at any point leaves the previous file (or none), never part
of a new one, and concurrent writers of the same file are safe (the last rename wins).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: str | os.PathLike[str], data: bytes, durable: bool = True) -> Path:
    """Write ``data`` to ``path`` through a temporary file in its folder and a rename.

    ``durable`` fsyncs the data before the rename, so that after a power loss the name
    points at the whole file; caches that can be rebuilt pass False and skip that cost.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) atomically and durably."""
    return write_atomic(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], data: Any, **dumps: Any) -> Path:
    """Write ``data`` as JSON (with a final newline) atomically and durably; ``dumps`` are
    :func:`json.dumps` options (``indent=2`` unless given)."""
    dumps.setdefault("indent", 2)
    return write_text(path, json.dumps(data, **dumps) + "\n")
