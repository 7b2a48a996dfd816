"""LSE-D, LSE-C and the AV offset with lipdub's SyncNet (see :mod:`lipdub.eval.metrics`).

Apart from the other metrics because it needs torch: the default QC measures lip sync from the
dub's visemes, and only ``qc_syncnet``, ``lipdub eval`` and training import this module.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Protocol

import numpy as np
import torch

from lipdub.eval.metrics import SYNC_WINDOW, VSHIFT, SyncResult, sync_from_curve
from lipdub.model.mel import MelFrontend
from lipdub.model.syncnet import SyncNet


class SyncScorer(Protocol):
    """Anything with SyncNet's two towers (lipdub's SyncNet, or a test's hand-made scorer)."""

    def embed_visual(self, faces: torch.Tensor) -> torch.Tensor:
        """(N, 5, 3, S, S) crops in [-1, 1] → (N, D) embeddings."""
        ...

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """(N, 1, n_mels, W) mel windows → (N, D) embeddings."""
        ...


def syncnet_input(net: SyncNet, frames: torch.Tensor) -> torch.Tensor:
    """(N, 5, 3, S, S) aligned crops in [-1, 1] → the SyncNet's (N, 5, h, w) grey mouth boxes."""
    return net.mouths(frames)


class SyncNetScorer:
    """:class:`SyncScorer` over a :class:`lipdub.model.syncnet.SyncNet` (no gradients)."""

    def __init__(self, net: SyncNet, device: str | torch.device = "cpu") -> None:
        self.net = net.eval().to(device)
        self.device = torch.device(device)

    @torch.no_grad()
    def embed_visual(self, faces: torch.Tensor) -> torch.Tensor:
        return self.net.embed_visual(syncnet_input(self.net, faces.to(self.device))).cpu()

    @torch.no_grad()
    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net.embed_audio(mel.to(self.device)).cpu()


def av_sync(
    scorer: SyncScorer,
    crops: np.ndarray,
    audio_16k: np.ndarray,
    fps: Fraction,
    frames: np.ndarray,
    mel: MelFrontend,
    vshift: int = VSHIFT,
    batch: int = 64,
) -> SyncResult:
    """LSE-D, LSE-C and the AV offset of crops against audio (see the module docstring).

    Arguments:
        scorer: the sync scorer.
        crops: (T, S, S, 3) uint8 consecutive aligned crops, T ≥ 5.
        audio_16k: (N,) float32 mono 16 kHz; sample 0 = frame 0 of ``frames``' numbering.
        fps: exact frame rate.
        frames: (T,) frame numbers of the crops (audio time base).
        mel: the mel front end of the scorer.
        vshift: offsets searched, ±frames.
        batch: windows per forward pass.

    Returns:
        The :class:`SyncResult`. Audio beyond the track's ends counts as silence.
    """
    t = len(crops)
    if t < SYNC_WINDOW:
        raise ValueError(f"need at least {SYNC_WINDOW} frames for a sync score, got {t}")
    frames = np.asarray(frames, np.int64)
    half = SYNC_WINDOW // 2
    centres = np.arange(half, t - half)
    vis = []
    for a in range(0, len(centres), batch):
        c = centres[a : a + batch]
        win = np.stack([crops[k - half : k + half + 1] for k in c])
        x = torch.from_numpy(win).float().div(127.5).sub(1.0).permute(0, 1, 4, 2, 3)
        vis.append(scorer.embed_visual(x))
    v = torch.cat(vis)  # (C, D)
    # Audio embeddings at frame numbers frames[centre] + o for every o: one pass over the span.
    lo, hi = int(frames[centres[0]]) - vshift, int(frames[centres[-1]]) + vshift
    span = np.arange(lo, hi + 1)
    aud = []
    for a in range(0, len(span), batch):
        m = mel.windows(audio_16k, fps, span[a : a + batch], mel.cfg.sample_rate)
        aud.append(scorer.embed_audio(m))
    aemb = torch.cat(aud)  # (len(span), D)
    base = frames[centres] - lo
    curve = np.empty(2 * vshift + 1)
    for i, o in enumerate(range(-vshift, vshift + 1)):
        curve[i] = float((v - aemb[base + o]).norm(dim=1).mean())
    return sync_from_curve(curve, vshift)
