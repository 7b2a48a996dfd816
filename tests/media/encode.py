"""Audio files made by the tests themselves, with PyAV's encoders."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np


def encode_mono(
    path: Path, codec: str, x: np.ndarray, rate: int, options: dict[str, str] | None = None
) -> None:
    """Write mono float samples ``x`` with PyAV's ``codec`` (container from the suffix;
    ``options`` go to the muxer, e.g. ``write_xing``)."""
    with av.open(str(path), "w", options=options or {}) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        assert isinstance(stream, av.AudioStream)
        context = stream.codec_context
        fmt = context.format.name
        step = context.frame_size or 1024
        for i in range(0, len(x), step):
            seg = x[i : i + step]
            if fmt.startswith("s16"):
                data = (seg * 32767).astype(np.int16)
            elif fmt.startswith("s32"):
                data = (seg * 2147483647).astype(np.int32)
            else:
                data = seg
            frame = av.AudioFrame.from_ndarray(data[None], format=fmt, layout="mono")
            frame.sample_rate, frame.pts = rate, i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
