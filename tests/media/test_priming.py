"""The same speech starts on the same sample whatever its container (issue 27: QC's AV offset
moved with the dub's container). Encoded here with PyAV's own encoders."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from scipy.signal import correlate

from lipdub.media.audio import load_audio
from tests.media.encode import encode_mono

RATE = 48_000


def _speechlike(seconds: float = 2.0) -> np.ndarray:
    """Bursts of harmonics with silences between: a sharp cross-correlation peak."""
    t = np.arange(int(RATE * seconds)) / RATE
    rng = np.random.default_rng(0)
    envelope = (np.sin(2 * np.pi * 3.1 * t) > 0.2) * (0.5 + 0.5 * rng.random(t.size))
    tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 540, 900), 1))
    return (0.2 * envelope * tone).astype(np.float32)


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
        encode_mono(path, codec, x, RATE, options)
    except (av.error.FFmpegError, ValueError) as exc:  # An FFmpeg built without the encoder.
        pytest.skip(f"cannot encode {codec}: {exc}")
    y = load_audio(path).samples[0]
    lag = int(np.argmax(correlate(y, x, mode="full", method="fft"))) - (len(x) - 1)
    # Lossy codecs move no energy by whole samples: the peak is the alignment itself.
    assert lag == 0, f"{name} decodes {lag} samples late"
