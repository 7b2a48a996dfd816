"""Audio features: exact frame ↔ sample mapping at every common rate, and the mel path."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from lipdub.errors import MediaError
from lipdub.model.config import MelConfig
from lipdub.model.mel import MelFrontend, frame_center_samples, hz_to_mel, mel_filterbank, mel_to_hz

RATES = {
    "23.976": Fraction(24000, 1001),
    "25": Fraction(25),
    "29.97": Fraction(30000, 1001),
    "30": Fraction(30),
    "50": Fraction(50),
    "60": Fraction(60),
}
SR = 16000
HOUR = 3600


@pytest.mark.parametrize("fps", RATES.values(), ids=RATES.keys())
def test_frame_centres_exact_over_an_hour(fps: Fraction) -> None:
    n = int(HOUR * fps) + 1
    ks = np.unique(np.concatenate([np.arange(0, n, 97), np.arange(n - 50, n)]))
    got = frame_center_samples(ks, fps, SR)
    exact = [SR * (k + Fraction(1, 2)) / fps for k in ks.tolist()]
    # Round half up of the exact rational time, so the error never exceeds half a sample.
    want = [int(x + Fraction(1, 2)) for x in exact]
    assert got.tolist() == want
    err = [abs(g - x) for g, x in zip(got.tolist(), exact, strict=True)]
    assert max(err) <= Fraction(1, 2)  # No drift: the bound holds at the end of the hour too.
    assert np.all(np.diff(got) > 0)


@pytest.mark.parametrize("fps", RATES.values(), ids=RATES.keys())
def test_click_at_frame_time_lands_in_the_window_centre(fps: Fraction) -> None:
    cfg = MelConfig()
    front = MelFrontend(cfg)
    probe = np.array([2, 120, 500])  # Far from 0 so the window is not cut by the start.
    clicks = frame_center_samples(probe, fps, SR)
    audio = np.zeros(int(clicks.max()) + SR, np.float32)
    audio[clicks] = 1.0
    mel = front.windows(audio, fps, probe).numpy()  # (K, 1, 80, 16)
    energy = mel[:, 0].mean(axis=1)  # (K, 16) mean over bands
    mid = cfg.window_frames // 2
    for row in energy:
        # STFT frames j = 7, 8 are centred 100 samples either side of the click: equal energy.
        assert set(np.argsort(row)[-2:]) == {mid - 1, mid}
        assert row[mid - 1] == pytest.approx(row[mid], abs=1e-3)
    assert mel.shape == (3, 1, cfg.n_mels, cfg.window_frames)
    assert mel.min() >= -cfg.max_abs_value and mel.max() <= cfg.max_abs_value


def test_window_spans_five_frames_at_25_fps() -> None:
    cfg = MelConfig()
    span = cfg.window_frames * cfg.hop  # Samples covered by the window's hops.
    assert Fraction(span, cfg.sample_rate) == 5 / Fraction(25)


def test_windows_of_a_chunk_equal_those_of_the_whole() -> None:
    front = MelFrontend(MelConfig())
    rng = np.random.default_rng(0)
    audio = rng.standard_normal(SR * 3).astype(np.float32) * 0.1
    fps = Fraction(30000, 1001)
    whole = front.windows(audio, fps, np.arange(80))
    part = front.windows(audio, fps, np.arange(30, 45))
    assert np.array_equal(whole[30:45].numpy(), part.numpy())


def test_filterbank_is_slaney() -> None:
    cfg = MelConfig()
    fb = mel_filterbank(cfg)
    assert fb.shape == (cfg.n_mels, cfg.n_fft // 2 + 1)
    assert np.all(fb >= 0) and np.all(fb.sum(axis=1) > 0)
    peaks = fb.argmax(axis=1)
    assert np.all(np.diff(peaks) >= 0)
    f = np.array([0.0, 500.0, 1000.0, 4000.0, 7600.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(f)), f, rtol=1e-9, atol=1e-9)
    assert hz_to_mel(1000.0) == pytest.approx(15.0)  # Slaney: 1 kHz is mel 15.


def test_wrong_rate_or_channels_refused() -> None:
    front = MelFrontend(MelConfig())
    audio = np.zeros(SR, np.float32)
    with pytest.raises(MediaError, match="16000 Hz"):
        front.windows(audio, Fraction(25), np.arange(3), sample_rate=48000)
    with pytest.raises(MediaError, match="mono"):
        front.windows(np.zeros((SR, 2), np.float32), Fraction(25), np.arange(3))


def test_silence_outside_the_audio() -> None:
    front = MelFrontend(MelConfig())
    mel = front.windows(np.zeros(0, np.float32), Fraction(25), np.arange(2))
    assert np.all(mel.numpy() == -MelConfig().max_abs_value)
