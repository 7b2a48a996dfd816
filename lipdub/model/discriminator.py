"""StyleGAN2's residual discriminator (Karras et al. 2020, Fig. 7c) at the generator's resolution.

fromRGB at S, then one residual block per resolution S..8 (conv 3×3, conv 3×3 ↓2, skip 1×1 ↓2,
summed and scaled by 1/√2), then the 4×4 epilogue: minibatch standard deviation, conv 3×3, two
fully connected layers, one logit per image (non-saturating loss, R1 in training).
"""

from __future__ import annotations

import torch
from torch import nn

from lipdub.model.config import GeneratorConfig
from lipdub.model.encoders import FaceBlock
from lipdub.model.layers import Conv2dLayer, FullyConnectedLayer, assert_shape


class MinibatchStd(nn.Module):
    """Appends the std of features over groups of the batch as extra channels (ProGAN §3)."""

    def __init__(
        self,
        group_size: int = 4,  # Samples per group (clipped to the batch size).
        num_channels: int = 1,  # Feature groups, one statistic channel each.
    ) -> None:
        super().__init__()
        self.group_size = group_size
        self.num_channels = num_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g:
            g = 1
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w).float()
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # Std over the group.
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1).repeat(g, 1, h, w)
        return torch.cat([x, y.to(x.dtype)], dim=1)


class Discriminator(nn.Module):
    """Real/fake logit for (N, 3, S, S) images."""

    def __init__(
        self,
        cfg: GeneratorConfig,  # Resolution and channels (same numbers as the generator).
        in_channels: int = 3,  # RGB.
        mbstd_group: int = 4,  # Minibatch-std group size.
    ) -> None:
        super().__init__()
        self.resolution = cfg.resolution
        self.in_channels = in_channels
        self.resolutions = [2**i for i in range(cfg.resolution.bit_length() - 1, 2, -1)]  # S..8
        self.fromrgb = Conv2dLayer(in_channels, cfg.channels(cfg.resolution), 1)
        self.blocks = nn.ModuleList(
            FaceBlock(cfg.channels(r), cfg.channels(r // 2)) for r in self.resolutions
        )
        c4 = cfg.channels(4)
        self.mbstd = MinibatchStd(mbstd_group)
        self.conv = Conv2dLayer(c4 + 1, c4, 3)
        self.fc = FullyConnectedLayer(c4 * 16, c4, activation=True)
        self.out = FullyConnectedLayer(c4, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) in [-1, 1] → (N,) logits."""
        s = self.resolution
        assert_shape(img, [None, self.in_channels, s, s], "discriminator input")
        x = self.fromrgb(img)
        for block in self.blocks:
            x, _ = block(x)
        x = self.conv(self.mbstd(x))
        return self.out(self.fc(x.flatten(1))).squeeze(1)
