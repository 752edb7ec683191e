"""Frames of a live source as they arrive, read with PyAV: a file (optionally played at its
own pace), a pipe (``pipe:`` is standard input, ``pipe:N`` file descriptor N, or a fifo's
path), an RTSP/HTTP URL, a V4L2 device (``/dev/video0``).

Unlike the readers of :mod:`dkp.data.decoding`, which seek to the frames a sampling asks for
in a file they can index, a live source is decoded frame by frame, in order, once; a frame is
converted to RGB only when asked for, at the sizes asked for, and no frame is kept after the
next one arrives, so memory stays flat however long the stream runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import av
import numpy as np
from av.video.frame import VideoFrame
from av.video.reformatter import VideoReformatter

from dkp.data.decoding import VideoDecodeError

log = logging.getLogger(__name__)


@dataclass
class LiveFrame:
    """One decoded frame: its time in seconds since the stream's first frame, when it was
    decoded (``time.perf_counter()``), and its picture, converted on demand by :meth:`rgb`."""

    time: float
    arrived: float
    picture: VideoFrame = field(repr=False)
    _converters: dict[tuple[int, int], VideoReformatter] = field(repr=False)

    def rgb(self, height: int, width: int) -> np.ndarray:
        """The frame as uint8 RGB ``(height, width, 3)``, the whole picture resized."""
        converter = self._converters.get((height, width))
        if converter is None:
            converter = self._converters[height, width] = VideoReformatter()
        return converter.reformat(
            self.picture, width=width, height=height, format="rgb24", threads=1
        ).to_ndarray()


class LiveSource:
    """A video source read as it arrives (see the module docstring).

    ``format`` names the demuxer where the source does not say (``v4l2`` for a camera,
    ``mpegts`` for a raw pipe...; ``/dev/video*`` implies ``v4l2``); ``options`` are FFmpeg's
    (``{"rtsp_transport": "tcp"}``, ``{"video_size": "640x480"}``...). With ``realtime``, a
    file is played at its own pace, as a camera would deliver it; ``timeout`` bounds the wait
    for data from a network source, in seconds.
    """

    def __init__(
        self,
        source: str,
        format: str | None = None,
        options: Mapping[str, str] | None = None,
        realtime: bool = False,
        threads: int = 1,
        timeout: float | None = 10.0,
    ) -> None:
        self.source = source
        self.format = format or ("v4l2" if source.startswith("/dev/video") else None)
        self.options = dict(options or {})
        self.realtime = realtime
        self.threads = threads
        self.timeout = timeout
        self._converters: dict[tuple[int, int], VideoReformatter] = {}

    def frames(self) -> Iterator[LiveFrame]:
        """Every frame of the source, in order, until it ends (or the caller stops)."""
        try:
            container = av.open(
                self.source, format=self.format, options=self.options, timeout=self.timeout
            )
        except (av.error.FFmpegError, OSError) as err:
            raise VideoDecodeError(self.source, f"cannot open the stream: {err}") from err
        with container:
            if not container.streams.video:
                raise VideoDecodeError(self.source, "the stream has no video")
            stream = container.streams.video[0]
            stream.thread_count = self.threads
            first: float | None = None
            began = time.perf_counter()
            for packet in container.demux(stream):
                try:
                    pictures = packet.decode()
                except av.error.FFmpegError as err:  # a damaged packet: live streams go on
                    log.warning("%s: skipped a damaged packet (%s)", self.source, err)
                    continue
                for picture in pictures:
                    now = time.perf_counter()
                    stamp = picture.time if picture.time is not None else now - began
                    first = stamp if first is None else first
                    if self.realtime:  # wait until the frame is due
                        delay = (stamp - first) - (now - began)
                        if delay > 0:
                            time.sleep(delay)
                            now = time.perf_counter()
                    yield LiveFrame(stamp - first, now, picture, self._converters)
