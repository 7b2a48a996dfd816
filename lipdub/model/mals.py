"""MaLS: moving-average based latent smoothing over time (StyleLipSync, Ki & Min, ICCV 2023).

For every style layer l of the W⁺ sequence w_1..w_T of one track:

    w̄_t = 0.25·w_{t−1} + 0.5·w_t + 0.25·w_{t+1}     (ends repeat: w_0 = w_1, w_{T+1} = w_T)

followed by that layer's own stack of 1-D convolutions over time (kernel 3, stride 1,
reflection padding 1). Each stack is residual, ŵ_t = w̄_t + g_l(w̄)_t, and the last convolution of
g_l is zero-initialised, so an untrained MaLS is exactly the moving average.

Output t depends on inputs t − r .. t + r with r = :attr:`MaLS.radius` = 1 + depth, which is what
lets the engine smooth a long track in overlapping chunks with results equal to one whole pass.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from lipdub.model.layers import LRELU_GAIN, LRELU_SLOPE, assert_shape

MA_KERNEL = (0.25, 0.5, 0.25)  # StyleLipSync's moving-average weights for t−1, t, t+1.


def moving_average(ws: torch.Tensor) -> torch.Tensor:
    """Apply w̄_t = 0.25·w_{t−1} + 0.5·w_t + 0.25·w_{t+1} along time, ends repeated.

    Arguments:
        ws: (N, T, L, C) W⁺ sequences.

    Returns:
        (N, T, L, C) smoothed sequences (same T).
    """
    assert_shape(ws, [None, None, None, None], "moving_average ws")
    padded = torch.cat([ws[:, :1], ws, ws[:, -1:]], dim=1)  # w_0 = w_1, w_{T+1} = w_T.
    a, b, c = MA_KERNEL
    return a * padded[:, :-2] + b * padded[:, 1:-1] + c * padded[:, 2:]


class TemporalConv(nn.Module):
    """1-D convolution over time, kernel 3, stride 1, reflection padding 1 (equalized lr)."""

    def __init__(
        self,
        in_channels: int,  # Input channels (w_dim or the hidden width).
        out_channels: int,  # Output channels.
        zero_init: bool = False,  # Zero weights and bias (last conv of a residual stack).
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        init = torch.zeros if zero_init else torch.randn
        self.weight = nn.Parameter(init(out_channels, in_channels, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels * 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, self.in_channels, None], "TemporalConv input")
        # Reflection needs two samples; a one-frame track pads by repetition (the same value).
        x = F.pad(x, (1, 1), mode="reflect" if x.shape[-1] > 1 else "replicate")
        w = self.weight.to(x.dtype) * self.weight_gain
        return F.conv1d(x, w, self.bias.to(x.dtype))


class TemporalStack(nn.Module):
    """g_l: the residual conv stack of one style layer, zero-initialised at its output."""

    def __init__(
        self,
        w_dim: int,  # Intermediate latent (W) dimensionality.
        hidden: int,  # Hidden channels between the convolutions.
        depth: int,  # Number of convolutions (≥ 1).
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"MaLS depth must be >= 1, got {depth}")
        chans = [w_dim] + [hidden] * (depth - 1) + [w_dim]
        self.convs = nn.ModuleList(
            TemporalConv(cin, cout, zero_init=(i == depth - 1))
            for i, (cin, cout) in enumerate(itertools.pairwise(chans))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, T) → (N, C, T): x + g_l(x)."""
        y = x
        for i, conv in enumerate(self.convs):
            y = conv(y)
            if i < len(self.convs) - 1:
                y = F.leaky_relu(y, LRELU_SLOPE) * LRELU_GAIN
        return x + y


class MaLS(nn.Module):
    """Moving average, then one residual temporal conv stack per style layer."""

    def __init__(
        self,
        num_layers: int,  # L, style layers of the synthesis network (one stack each).
        w_dim: int,  # Intermediate latent (W) dimensionality.
        hidden: int,  # Hidden channels of each stack.
        depth: int,  # Convolutions per stack.
    ) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.w_dim = w_dim
        self.depth = depth
        self.stacks = nn.ModuleList(TemporalStack(w_dim, hidden, depth) for _ in range(num_layers))

    @property
    def radius(self) -> int:
        """Frames of context on each side that output t depends on: 1 (average) + depth."""
        return 1 + self.depth

    def forward(self, ws: torch.Tensor) -> torch.Tensor:
        """Smooth W⁺ sequences.

        Arguments:
            ws: (N, T, L, w_dim), a whole track (N = 1) or training windows (T = 5).

        Returns:
            (N, T, L, w_dim), same length T.
        """
        assert_shape(ws, [None, None, self.num_layers, self.w_dim], "MaLS ws")
        avg = moving_average(ws)
        out = [
            stack(avg[:, :, layer].transpose(1, 2)).transpose(1, 2)  # (N, T, C)
            for layer, stack in enumerate(self.stacks)
        ]
        return torch.stack(out, dim=2)
