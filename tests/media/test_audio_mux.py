"""Audio decode of common formats, offset/gain/fit, resampling, stems, and muxing the dub."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from lipdub.errors import ConfigError, MediaError
from lipdub.media import audio as A
from lipdub.media.read import probe
from tests.conftest import make_video, tone


def _encode(path: Path, audio: A.Audio, codec: str, fmt: str) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=audio.rate, layout="mono")
        s.format = fmt
        step = 1152
        for i in range(0, audio.samples.shape[1], step):
            chunk = np.ascontiguousarray(audio.samples[:, i : i + step])
            if fmt == "s16":
                chunk = (chunk * 32767).astype(np.int16)
            f = av.AudioFrame.from_ndarray(
                chunk, format=fmt if fmt != "s16" else "s16", layout="mono"
            )
            f.sample_rate, f.pts = audio.rate, i
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path


@pytest.mark.parametrize(
    ("suffix", "codec", "fmt"),
    [
        (".wav", "pcm_s16le", "s16"),
        (".flac", "flac", "s16"),
        (".mp3", "libmp3lame", "fltp"),
        (".m4a", "aac", "fltp"),
    ],
)
def test_common_formats_decode_at_their_own_rate(tmp_path: Path, suffix, codec, fmt):
    src = tone(1.0, rate=44_100)
    path = _encode(tmp_path / f"a{suffix}", src, codec, fmt)
    got = A.load_audio(path)
    assert got.rate == 44_100 and got.channels == 1
    assert abs(got.duration_s - 1.0) < 0.06  # Lossy codecs add a frame of priming/padding.
    model = A.to_model_audio(got)
    assert model.dtype == np.float32 and model.ndim == 1
    assert abs(len(model) - round(got.duration_s * A.MODEL_RATE)) <= 1


def test_resample_preserves_a_tone_frequency():
    src = tone(1.0, rate=48_000, freq=1000.0)
    out = A.resample(src, 16_000, mono=True)
    spectrum = np.abs(np.fft.rfft(out.samples[0]))
    assert out.samples.shape == (1, 16_000)
    assert abs(np.argmax(spectrum) * 16_000 / 16_000 - 1000) <= 2


def test_offset_gain_and_fit():
    src = tone(1.0, rate=1000)
    shifted = A.apply_offset_gain(src, 0.25, -6.0)
    assert shifted.samples.shape[1] == 1250
    assert np.all(shifted.samples[:, :250] == 0)
    np.testing.assert_allclose(shifted.samples[:, 250:], src.samples * 10 ** (-6 / 20), rtol=1e-6)
    early = A.apply_offset_gain(src, -0.5, 0.0)
    assert early.samples.shape[1] == 500
    fitted, warning = A.fit_to_length(src, 1500, "pad-trim", "shot x")
    assert fitted.samples.shape[1] == 1500 and "padded" in warning
    with pytest.raises(ConfigError, match="shorter than the shot; set audio_fit: pad"):
        A.fit_to_length(src, 1500, "error", "shot x")
    with pytest.raises(ConfigError, match="longer than the shot; set audio_fit: trim"):
        A.fit_to_length(src, 500, "pad", "shot x")
    same, none = A.fit_to_length(src, 1001, "error", "shot x")  # One sample is not a mismatch.
    assert none is None and same.samples.shape[1] == 1001


def test_stems_are_summed_without_clipping():
    a, b = tone(1.0, rate=8000), tone(1.0, rate=16_000, freq=300.0)
    a = A.Audio(a.samples * 3, a.rate)  # Loud enough that the sum would clip.
    mixed = A.mix([a, b])
    assert mixed.rate == 8000 and np.abs(mixed.samples).max() <= 1.0 + 1e-6


def test_missing_audio_and_no_audio_stream(tmp_path: Path, clip_25: Path):
    with pytest.raises(MediaError, match="no such file"):
        A.load_audio(tmp_path / "none.wav")
    with pytest.raises(MediaError, match="has no audio stream"):
        A.load_audio(clip_25)


@pytest.mark.parametrize("suffix", [".mov", ".mkv", ".mp4"])
def test_mux_gives_an_audio_stream_of_the_dub_length(tmp_path: Path, suffix: str):
    fps = Fraction(30000, 1001)
    dub = tone(50 / float(fps), rate=48_000, channels=2)
    codec = "ffv1" if suffix == ".mkv" else "h264"
    path = make_video(tmp_path / f"m{suffix}", 50, fps, codec=codec, audio=dub)
    info = probe(path)
    assert info.has_audio and info.frame_count == 50
    got = A.load_audio(path)
    assert got.rate == 48_000 and got.channels == 2
    if suffix == ".mp4":  # AAC: priming and padding add at most one 1024-sample frame each.
        assert abs(got.samples.shape[1] - dub.samples.shape[1]) <= 2048
    else:  # PCM: sample-exact, and 24-bit close to the source.
        assert got.samples.shape == dub.samples.shape
        assert np.abs(got.samples - dub.samples).max() < 1e-4
