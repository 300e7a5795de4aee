"""A tiny real mp4, for fakes to hand out as a vendor's output."""

from __future__ import annotations

import io
from functools import cache

import av
import numpy as np


@cache
def tiny_mp4(width: int = 64, height: int = 36, frames: int = 12) -> bytes:
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            picture = np.full((height, width, 3), index * 20 % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out.getvalue()
