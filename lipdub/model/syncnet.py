"""SyncNet: the lip-sync expert that scores 5 frames against their mel window (L_sync, LSE-D/C).

Wav2Lip's expert (Prajwal et al., ACM MM 2020) looks at 5 consecutive frames and the mel window
of the middle one. This version keeps that interface and changes what made Wav2Lip's recipe
stall at chance on a few minutes of data:

- it sees only the **mouth box** of the aligned crop (:attr:`SyncNetConfig.mouth_box`), in
  **grey**, so cheek colour and background cannot be learnt instead of lip motion;
- both towers are plain conv + BatchNorm + ReLU stacks (fast to train, frozen in eval mode later);
- the embeddings are unit vectors and the sync probability is a calibrated logistic of their
  cosine, ``P_sync = σ(s·cos(v, a) + b)`` with learnt ``s`` and ``b``, so training can use an
  InfoNCE loss over many audio offsets at once (see :mod:`lipdub.train.syncnet`) while P_sync
  keeps Wav2Lip's meaning for L_sync = −log P_sync;
- distances ``‖v − a‖ ∈ [0, 2]`` give LSE-D / LSE-C the way syncnet_python computes them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lipdub.model.config import SyncNetConfig
from lipdub.model.layers import assert_shape

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights for the grey mouth input.


def _block(c_in: int, c_out: int, stride: int | tuple[int, int]) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _tower(c_in: int, widths: tuple[int, ...]) -> nn.Sequential:
    """Stem then, per width, a stride-2 block and a plain block."""
    layers = [_block(c_in, widths[0], 1)]
    prev = widths[0]
    for w in widths:
        layers += [_block(prev, w, 2), _block(w, w, 1)]
        prev = w
    return nn.Sequential(*layers)


class VisualEncoder(nn.Module):
    """(N, T, H, W) grey mouth boxes → (N, D) embeddings (not yet normalised)."""

    def __init__(self, cfg: SyncNetConfig) -> None:
        super().__init__()
        self.frames = cfg.num_frames
        self.height, self.width = cfg.mouth_shape
        self.convs = _tower(cfg.num_frames, cfg.channels)
        h, w = self.height, self.width
        for _ in cfg.channels:
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        self.out = nn.Linear(cfg.channels[-1] * h * w, cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, self.frames, self.height, self.width], "SyncNet mouths")
        return self.out(self.convs(x).flatten(1))


class AudioTower(nn.Module):
    """(N, 1, n_mels, W) log-mel windows → (N, D) embeddings (not yet normalised)."""

    def __init__(self, cfg: SyncNetConfig) -> None:
        super().__init__()
        self.n_mels, self.window = cfg.mel.n_mels, cfg.mel.window_frames
        self.convs = _tower(1, cfg.audio_channels)
        h, w = self.n_mels, self.window
        for _ in cfg.audio_channels:
            h, w = (h - 1) // 2 + 1, (w - 1) // 2 + 1
        self.out = nn.Linear(cfg.audio_channels[-1] * h * w, cfg.embed_dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        assert_shape(mel, [None, 1, self.n_mels, self.window], "SyncNet mel")
        return self.out(self.convs(mel).flatten(1))


class SyncNet(nn.Module):
    """Audio-visual sync scorer: P_sync = σ(s·cos(v, a) + b)."""

    luma: torch.Tensor  # Buffer: RGB → grey weights, (1, 1, 3, 1, 1).

    def __init__(
        self,
        cfg: SyncNetConfig,  # Architecture numbers.
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.visual = VisualEncoder(cfg)
        self.audio = AudioTower(cfg)
        # Logistic calibration of the cosine (CLIP-style learnt temperature, plus a bias).
        self.logit_scale = nn.Parameter(torch.tensor(math.log(10.0)))
        self.logit_bias = nn.Parameter(torch.tensor(-5.0))
        self.register_buffer("luma", torch.tensor(LUMA).view(1, 1, 3, 1, 1), persistent=False)

    def mouths(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, T, 3, S, S) aligned crops in [-1, 1] (any S) → (N, T, h, w) grey mouth boxes.

        The crop is area-resized to the config's resolution and the mouth box cut out of it, so a
        128 or 256 generator output and a prepared crop give the same input.
        """
        n, t, c, s, _ = frames.shape
        assert_shape(frames, [n, t, 3, s, s], "SyncNet frames")
        r = self.cfg.resolution
        if s != r:
            flat = F.interpolate(frames.reshape(n * t, c, s, s), size=(r, r), mode="area")
            frames = flat.reshape(n, t, c, r, r)
        top, bottom, left, right = self.cfg.mouth_pixels
        box = frames[:, :, :, top:bottom, left:right]
        return (box * self.luma.to(box.dtype)).sum(dim=2)

    def embed_visual(self, mouths: torch.Tensor) -> torch.Tensor:
        """Unit visual embeddings of (N, T, h, w) mouth boxes."""
        return F.normalize(self.visual(mouths), dim=1)

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """Unit audio embeddings of (N, 1, n_mels, W) mel windows."""
        return F.normalize(self.audio(mel), dim=1)

    def logits(self, v: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """s·cos(v, a) + b for unit embeddings (broadcasting over leading axes)."""
        return self.logit_scale.exp() * (v * a).sum(dim=-1) + self.logit_bias

    def forward(self, mouths: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """P_sync (N,) in (0, 1) of mouth boxes and their mel windows."""
        return torch.sigmoid(self.logits(self.embed_visual(mouths), self.embed_audio(mel)))


def sync_loss(p_sync: torch.Tensor, in_sync: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on P_sync (Wav2Lip); the generator uses ``in_sync = 1``."""
    eps = math.ulp(1.0) * 16
    return F.binary_cross_entropy(p_sync.clamp(eps, 1 - eps), in_sync.to(p_sync.dtype))
