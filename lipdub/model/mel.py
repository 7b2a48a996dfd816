"""Audio features: log-mel windows computed *per video frame*, exact at any rational frame rate.

Instead of one global spectrogram at a fixed hop (whose frames fall between video frames at
23.976, 29.97, 60 fps... and drift when indexed with floats), every video frame k gets its own
window of ``window_frames`` STFT frames centred on the frame's centre sample

    c_k = round(sr · (k + ½) / fps)          (exact integer arithmetic, fps = p / q rational)

with STFT frame j of the window centred at c_k + hop·j − ⌊hop·(W − 1) / 2⌋, j = 0..W−1. So the mel
frames sit on the same 12.5 ms grid relative to every video frame at every frame rate, the error
against the true frame time is at most half a sample (31 µs) and does not grow with k. At 25 fps a
16-frame window spans exactly the five frames k−2..k+2, as Wav2Lip's SyncNet window does.

Spectral path (Wav2Lip's hparams, written out since neither librosa nor torchaudio is used):
pre-emphasis y[n] = x[n] − 0.97·x[n−1]; periodic Hann window; |rfft|; Slaney mel filterbank
(librosa's default, area-normalised); 20·log10(max(1e-5, ·)) − 20 dB; scaled and clipped to
[−4, 4]. Samples before 0 or after the end of the audio count as silence.

Input is mono float32 at 16 kHz; resampling is the media layer's job, so nothing here resamples.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import torch

from lipdub.errors import MediaError
from lipdub.model.config import MelConfig


def frame_center_samples(frames: np.ndarray, fps: Fraction, sample_rate: int) -> np.ndarray:
    """Centre sample of each video frame, c_k = round_half_up(sr · (2k + 1) / (2 · fps)).

    Arguments:
        frames: (K,) integer frame numbers counted from the audio's sample 0.
        fps: exact frame rate, e.g. ``Fraction(30000, 1001)``.
        sample_rate: audio sample rate in Hz.

    Returns:
        (K,) int64 sample indices, computed in integers (no floating-point drift).
    """
    fps = Fraction(fps)
    if fps <= 0:
        raise ValueError(f"frame rate must be positive, got {fps}")
    p, q = fps.numerator, fps.denominator
    k = np.asarray(frames, dtype=np.int64)
    # floor(x + 1/2) with x = sr (2k+1) q / (2p)  ==  (sr (2k+1) q + p) // (2p).
    return (sample_rate * (2 * k + 1) * q + p) // (2 * p)


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    safe = np.maximum(f, min_log_hz)
    return np.where(f >= min_log_hz, min_log_mel + np.log(safe / min_log_hz) / logstep, f / f_sp)


def mel_to_hz(m: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, math.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def mel_filterbank(cfg: MelConfig) -> np.ndarray:
    """Slaney-normalised triangular mel filters, (n_mels, n_fft // 2 + 1) float32.

    Same construction as ``librosa.filters.mel(htk=False, norm="slaney")``.
    """
    fft_freqs = np.linspace(0.0, cfg.sample_rate / 2.0, cfg.n_fft // 2 + 1)
    mel_pts = np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2)
    hz_pts = mel_to_hz(mel_pts)
    fdiff = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_pts[2:] - hz_pts[:-2]))[:, None]  # Slaney: equal area per filter.
    return weights.astype(np.float32)


class MelFrontend:
    """Computes normalised log-mel windows for video frames (no module state, no I/O)."""

    def __init__(self, cfg: MelConfig) -> None:
        """Arguments:
        cfg: window geometry and spectral parameters.
        """
        self.cfg = cfg
        self.filters = torch.from_numpy(mel_filterbank(cfg))  # (n_mels, n_fft // 2 + 1)
        self.window = torch.hann_window(cfg.n_fft, periodic=True, dtype=torch.float64).float()
        w = cfg.window_frames
        # Centres of the window's STFT frames relative to c_k (symmetric for even hop·(W−1)).
        self.offsets = np.arange(w, dtype=np.int64) * cfg.hop - (cfg.hop * (w - 1)) // 2

    def frame_centers(self, frames: np.ndarray, fps: Fraction) -> np.ndarray:
        """c_k for each frame (see :func:`frame_center_samples`)."""
        return frame_center_samples(frames, fps, self.cfg.sample_rate)

    def windows(
        self,
        audio: np.ndarray,
        fps: Fraction,
        frames: np.ndarray,
        sample_rate: int = 16000,
    ) -> torch.Tensor:
        """Mel windows for the given video frames.

        Arguments:
            audio: (N,) float32 mono waveform at ``cfg.sample_rate``; sample 0 = frame 0's start.
            fps: exact video frame rate.
            frames: (K,) frame numbers (any order; a long track is done in chunks by the caller).
            sample_rate: rate of ``audio``; must equal ``cfg.sample_rate``.

        Returns:
            (K, 1, n_mels, window_frames) float32 tensor in [−max_abs_value, max_abs_value].

        Raises:
            MediaError: the audio is not mono at the expected rate.
        """
        cfg = self.cfg
        if sample_rate != cfg.sample_rate:
            raise MediaError(
                f"audio is {sample_rate} Hz; the generator needs {cfg.sample_rate} Hz "
                "(resample in the media layer first)"
            )
        if audio.ndim != 1:
            raise MediaError(f"audio must be mono (N,), got shape {audio.shape}")
        frames = np.asarray(frames, dtype=np.int64).reshape(-1)
        centers = self.frame_centers(frames, fps)[:, None] + self.offsets[None, :]  # (K, W)
        # n_fft samples per STFT frame, plus one before for the pre-emphasis filter.
        first = centers - cfg.n_fft // 2 - 1
        idx = first[..., None] + np.arange(cfg.n_fft + 1, dtype=np.int64)  # (K, W, n_fft + 1)
        src = audio if audio.shape[0] else np.zeros(1, np.float32)  # Empty dub = silence.
        valid = (idx >= 0) & (idx < audio.shape[0])
        seg = np.where(valid, src[np.clip(idx, 0, src.shape[0] - 1)], 0.0)
        x = torch.from_numpy(seg.astype(np.float32))
        x = x[..., 1:] - cfg.preemphasis * x[..., :-1]  # y[n] = x[n] − k·x[n−1]
        spec = torch.fft.rfft(x * self.window, n=cfg.n_fft).abs()  # (K, W, n_fft // 2 + 1)
        mel = spec @ self.filters.t()  # (K, W, n_mels)
        db = 20.0 * torch.log10(mel.clamp_min(1e-5)) - cfg.ref_level_db
        m = cfg.max_abs_value
        norm = (2 * m * (db - cfg.min_level_db) / -cfg.min_level_db - m).clamp(-m, m)
        return norm.transpose(1, 2).unsqueeze(1).contiguous()  # (K, 1, n_mels, W)
