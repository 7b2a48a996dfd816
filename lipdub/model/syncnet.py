"""SyncNet: the lip-sync expert of Wav2Lip (Prajwal et al., ACM MM 2020) for L_sync.

A visual tower encodes 5 consecutive lower-half face crops stacked on channels, (N, 15, S/2, S);
an audio tower (:class:`~lipdub.model.encoders.AudioEncoder`) encodes the mel window that matches
them (the window of the middle frame, which at 25 fps spans exactly those five frames). Both
embeddings go through ReLU and L2 normalisation, and the score is their cosine similarity

    P_sync = cos(v, a) = v · a / (‖v‖ ‖a‖)  ∈ [0, 1]   (non-negative embeddings)

trained with binary cross-entropy on in-sync / off-sync pairs, then frozen while the generator
learns with L_sync = −log P_sync.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lipdub.model.config import SyncNetConfig
from lipdub.model.encoders import SQRT_HALF, AudioEncoder
from lipdub.model.layers import Conv2dLayer, FullyConnectedLayer, assert_shape


class VisualEncoder(nn.Module):
    """SyncNet's visual tower on (N, 3·num_frames, S/2, S) lower halves."""

    def __init__(
        self,
        cfg: SyncNetConfig,  # Resolution, frame count, channels, embedding size.
    ) -> None:
        super().__init__()
        self.in_channels = 3 * cfg.num_frames
        self.height, self.width = cfg.resolution // 2, cfg.resolution

        def chans(w: int) -> int:
            return min(cfg.channel_base // w, cfg.channel_max)

        self.stem = Conv2dLayer(self.in_channels, chans(self.width), 3)
        down, res = [], []
        w = self.width
        while w > 2:  # Halve both axes until the height is 1 (S/2 × S → 1 × 2).
            down.append(Conv2dLayer(chans(w), chans(w // 2), 3, down=True))
            res.append(Conv2dLayer(chans(w // 2), chans(w // 2), 3))
            w //= 2
        self.down = nn.ModuleList(down)
        self.res = nn.ModuleList(res)
        self.head = Conv2dLayer(chans(2), chans(2), (1, 2), padding=0)
        self.out = FullyConnectedLayer(chans(2), cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, self.in_channels, self.height, self.width], "SyncNet faces")
        x = self.stem(x)
        for down, res in zip(self.down, self.res, strict=True):
            x = down(x)
            x = (x + res(x)) * SQRT_HALF
        return self.out(self.head(x).flatten(1))


class SyncNet(nn.Module):
    """Audio-visual sync scorer: cosine similarity of the two towers' embeddings."""

    def __init__(
        self,
        cfg: SyncNetConfig,  # Architecture numbers.
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.visual = VisualEncoder(cfg)
        self.audio = AudioEncoder(cfg.mel, cfg.audio_channels, cfg.embed_dim)

    @staticmethod
    def lower_half(frames: torch.Tensor) -> torch.Tensor:
        """(N, T, 3, S, S) aligned crops → (N, 3T, S/2, S) stacked lower halves."""
        n, t, c, s, _ = frames.shape
        assert_shape(frames, [n, t, 3, s, s], "SyncNet frames")
        return frames[:, :, :, s // 2 :].reshape(n, t * c, s // 2, s)

    def embed(self, faces: torch.Tensor, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-length non-negative embeddings (v, a) of (N, 15, S/2, S) faces and mel windows."""
        v = F.normalize(F.relu(self.visual(faces)), dim=1)
        a = F.normalize(F.relu(self.audio(mel)), dim=1)
        return v, a

    def forward(self, faces: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """P_sync (N,) = cos(v, a) in [0, 1]."""
        v, a = self.embed(faces, mel)
        return (v * a).sum(dim=1)


def sync_loss(p_sync: torch.Tensor, in_sync: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on P_sync (Wav2Lip); the generator uses ``in_sync = 1``."""
    eps = math.ulp(1.0) * 16
    return F.binary_cross_entropy(p_sync.clamp(eps, 1 - eps), in_sync.to(p_sync.dtype))
