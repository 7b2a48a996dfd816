"""StyleSync's encoders: E_face on [I_t^m ‖ I_ref] and E_a on the mel window of frame t.

E_face is a StyleGAN2 residual down-path (the discriminator's architecture): at every resolution
r = S, S/2, ..., 4 it keeps the feature map F_r that the synthesis network later receives as its
noise input, and at 4×4 it flattens into the bottleneck vector f_f. E_a is a residual strided
conv stack over the (80 × 16) mel window in the style of Wav2Lip's audio encoder.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lipdub.model.config import GeneratorConfig, MelConfig
from lipdub.model.layers import Conv2dLayer, FullyConnectedLayer, assert_shape

SQRT_HALF = 1.0 / math.sqrt(2.0)  # Residual branches are summed then scaled to unit variance.


class FaceBlock(nn.Module):
    """One resolution of the residual down-path: conv, conv ↓2, skip 1×1 ↓2."""

    def __init__(
        self,
        in_channels: int,  # Channels at this resolution.
        out_channels: int,  # Channels at half this resolution.
    ) -> None:
        super().__init__()
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3)
        self.conv1 = Conv2dLayer(in_channels, out_channels, 3, down=True)
        self.skip = Conv2dLayer(
            in_channels, out_channels, 1, bias=False, activation=False, down=True
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (output at half resolution, feature map F_r at this resolution)."""
        y = self.skip(x)
        feat = self.conv0(x)
        x = (self.conv1(feat) + y) * SQRT_HALF
        return x, feat


class FaceEncoder(nn.Module):
    """E_face: 6-channel [masked target ‖ reference] → (f_f, [F_4, F_8, ..., F_S])."""

    def __init__(
        self,
        cfg: GeneratorConfig,  # Resolution, channels and face_dim.
        in_channels: int = 6,  # Masked target RGB + reference RGB.
    ) -> None:
        super().__init__()
        self.resolution = cfg.resolution
        self.in_channels = in_channels
        self.face_dim = cfg.face_dim
        self.resolutions = [2**i for i in range(cfg.resolution.bit_length() - 1, 2, -1)]  # S..8
        self.fromrgb = Conv2dLayer(in_channels, cfg.channels(cfg.resolution), 1)
        self.blocks = nn.ModuleDict(
            {str(r): FaceBlock(cfg.channels(r), cfg.channels(r // 2)) for r in self.resolutions}
        )
        c4 = cfg.channels(4)
        self.conv4 = Conv2dLayer(c4, c4, 3)
        self.fc = FullyConnectedLayer(c4 * 16, c4, activation=True)
        self.out = FullyConnectedLayer(c4, cfg.face_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Encode the 6-channel input.

        Arguments:
            x: (N, 6, S, S) in [-1, 1]: masked target I_t^m = (1 − M)·I_t, then I_ref.

        Returns:
            ``f_f`` (N, face_dim) and the feature maps ``[F_4, F_8, ..., F_S]`` in order of
            increasing resolution, F_r of shape (N, channels(r), r, r).
        """
        assert_shape(x, [None, self.in_channels, self.resolution, self.resolution], "E_face input")
        feats: list[torch.Tensor] = []
        x = self.fromrgb(x)
        for r in self.resolutions:
            x, feat = self.blocks[str(r)](x)
            feats.append(feat)
        feat4 = self.conv4(x)
        feats.append(feat4)
        f_f = self.out(self.fc(feat4.flatten(1)))
        return f_f, feats[::-1]


class AudioEncoder(nn.Module):
    """E_a (and SyncNet's audio tower): (N, 1, n_mels, window) log-mel → (N, out_dim)."""

    def __init__(
        self,
        mel: MelConfig,  # Window geometry (n_mels × window_frames).
        base_channels: int,  # Channels of the first conv; doubled at each stride-2 stage.
        out_dim: int,  # Output feature dimensionality (f_a, or the SyncNet embedding).
    ) -> None:
        super().__init__()
        self.n_mels = mel.n_mels
        self.window = mel.window_frames
        self.out_dim = out_dim
        self.stem = Conv2dLayer(1, base_channels, 3)
        h, w, c = mel.n_mels, mel.window_frames, base_channels
        down, res = [], []
        while w > 1:  # Stride 2 on both axes until the time axis is 1 (16 → 1 in 4 stages).
            down.append(Conv2dLayer(c, 2 * c, 3, stride=2, padding=1))
            res.append(Conv2dLayer(2 * c, 2 * c, 3))
            h, w, c = (h - 1) // 2 + 1, (w - 1) // 2 + 1, 2 * c
        self.down = nn.ModuleList(down)
        self.res = nn.ModuleList(res)
        self.head = Conv2dLayer(c, c, (h, w), padding=0)  # Collapse the remaining (h, 1) map.
        self.out = FullyConnectedLayer(c, out_dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Encode mel windows.

        Arguments:
            mel: (N, 1, n_mels, window_frames) normalised log-mel windows.

        Returns:
            (N, out_dim) features.
        """
        assert_shape(mel, [None, 1, self.n_mels, self.window], "E_a input")
        x = self.stem(mel)
        for down, res in zip(self.down, self.res, strict=True):
            x = down(x)
            x = (x + res(x)) * SQRT_HALF
        return self.out(self.head(x).flatten(1))
