"""A video's packet index through a reader's index store: built once, then loaded."""

from __future__ import annotations

from dkp.data.decoding import PyAVReader, VideoDecodeError
from dkp.data.decoding.api import StrPath, file_version
from dkp.data.decoding.packet_index import PacketIndex


def packet_index(reader: PyAVReader, path: StrPath) -> PacketIndex:
    """The packet index of ``path`` (built by a demux pass if ``reader`` has none stored).

    ``reader`` must store indexes (an ``index_dir``): training reads them back, so checking or
    preparing a dataset also indexes it. Raises :class:`VideoDecodeError` naming the file.
    """
    if reader.index_store is None:
        raise ValueError("data.reader.index_dir: checking and preparing need a folder for indexes")
    reader.ensure_index(path)
    arrays = reader.index_store.load(file_version(path))
    if arrays is None:
        where = reader.index_store.directory
        raise VideoDecodeError(path, f"cannot store its packet index in {where}")
    try:
        return PacketIndex.from_arrays(arrays)
    except ValueError as err:
        raise VideoDecodeError(path, f"bad packet index ({err})") from err
