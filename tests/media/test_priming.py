"""The same speech starts on the same sample whatever its container (issue 27: QC's AV offset
moved with the dub's container). Encoded here with PyAV's own encoders."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from scipy.signal import correlate

from lipdub.media.audio import load_audio

RATE = 48_000


def _speechlike(seconds: float = 2.0) -> np.ndarray:
    """Bursts of harmonics with silences between: a sharp cross-correlation peak."""
    t = np.arange(int(RATE * seconds)) / RATE
    rng = np.random.default_rng(0)
    envelope = (np.sin(2 * np.pi * 3.1 * t) > 0.2) * (0.5 + 0.5 * rng.random(t.size))
    tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 540, 900), 1))
    return (0.2 * envelope * tone).astype(np.float32)


def _encode(path: Path, codec: str, x: np.ndarray, options: dict[str, str] | None = None) -> None:
    with av.open(str(path), "w", options=options or {}) as out:
        stream = out.add_stream(codec, rate=RATE, layout="mono")
        fmt = stream.codec_context.format.name
        step = stream.codec_context.frame_size or 1024
        for i in range(0, len(x), step):
            seg = x[i : i + step]
            if fmt.startswith("s16"):
                data = (seg * 32767).astype(np.int16)
            elif fmt.startswith("s32"):
                data = (seg * 2147483647).astype(np.int32)
            else:
                data = seg
            frame = av.AudioFrame.from_ndarray(data[None], format=fmt, layout="mono")
            frame.sample_rate, frame.pts = RATE, i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


@pytest.mark.parametrize(
    ("name", "codec", "options"),
    [
        ("a.wav", "pcm_s16le", None),
        ("a.flac", "flac", None),
        ("a.mp3", "libmp3lame", None),  # LAME header: FFmpeg trims the delay itself.
        ("b.mp3", "libmp3lame", {"write_xing": "0"}),  # No header: 1105 samples late before.
        ("a.m4a", "aac", None),  # Edit list: FFmpeg trims the priming itself.
        ("a.aac", "aac", None),  # Raw ADTS: 1024 samples late before.
    ],
)
def test_every_container_starts_on_the_same_sample(
    tmp_path: Path, name: str, codec: str, options: dict[str, str] | None
) -> None:
    x = _speechlike()
    path = tmp_path / name
    try:
        _encode(path, codec, x, options)
    except (av.error.FFmpegError, ValueError) as exc:  # An FFmpeg built without the encoder.
        pytest.skip(f"cannot encode {codec}: {exc}")
    y = load_audio(path).samples[0]
    lag = int(np.argmax(correlate(y, x, mode="full", method="fft"))) - (len(x) - 1)
    # Lossy codecs move no energy by whole samples: the peak is the alignment itself.
    assert lag == 0, f"{name} decodes {lag} samples late"
