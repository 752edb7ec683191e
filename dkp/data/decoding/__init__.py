"""Video decoding by time: the interface (:mod:`.api`) and one module per backend or concern.

``PyAVReader`` reads video files (PyAV/FFmpeg), ``FrameFolderReader`` folders of images; both
return the frame shown at each requested time, resized, as uint8 RGB arrays.
"""

from dkp.data.decoding.api import (
    DecodeStats,
    FrameRequest,
    VideoDecodeError,
    VideoInfo,
    VideoReader,
)
from dkp.data.decoding.frame_cache import FrameCache
from dkp.data.decoding.frame_folder import FrameFolderReader
from dkp.data.decoding.parallel_indexing import IndexingReport, index_videos
from dkp.data.decoding.pyav_reader import PyAVReader

__all__ = [
    "DecodeStats",
    "FrameCache",
    "FrameFolderReader",
    "FrameRequest",
    "IndexingReport",
    "PyAVReader",
    "VideoDecodeError",
    "VideoInfo",
    "VideoReader",
    "index_videos",
]
