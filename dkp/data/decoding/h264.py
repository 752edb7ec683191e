"""The two facts about H.264 bitstreams the reader needs: NAL length size and reference flags."""

from __future__ import annotations

from av.video.stream import VideoStream


def avc_nal_length(stream: VideoStream) -> int | None:
    """Bytes of each NAL unit's length prefix in H.264 packets (avcC extradata), else None."""
    extradata = stream.codec_context.extradata or b""
    if stream.codec_context.name != "h264" or len(extradata) < 7 or extradata[0] != 1:
        return None
    return (extradata[4] & 3) + 1


def unreferenced(data: bytes, nal_length: int) -> bool:
    """Whether an H.264 access unit (length-prefixed NAL units) is a picture no other picture
    references: its slices carry nal_ref_idc 0, so decoding can leave it out."""
    i = 0
    while i + nal_length < len(data):
        header = data[i + nal_length]
        if header & 0x1F in (1, 5):  # a coded slice: all of a picture's share nal_ref_idc
            return header & 0x60 == 0
        i += nal_length + int.from_bytes(data[i : i + nal_length], "big")
    return False
