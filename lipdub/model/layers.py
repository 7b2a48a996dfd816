"""Building blocks shared by the networks (StyleGAN2, Karras et al. CVPR 2020).

Equalized learning rate: weights are stored as N(0, 1) and scaled at run time by
1/sqrt(fan_in) (ProGAN §4.1). The modulated convolution implements StyleGAN2 Eq. 1–3:

    Eq. 1  w'_ijk = s_i · w_ijk                      (modulation by the style s = A(w))
    Eq. 3  w''_ijk = w'_ijk / sqrt(Σ_i,k w'_ijk² + ε)  (demodulation)

computed in the "non-fused" form y = d_j · conv(x ⊙ s, w), which is the same function (the style
scales input channels, the demodulation coefficient d_j scales output channels) but runs as one
ordinary convolution for the whole batch: fast with channels-last and bf16 on GPUs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.2  # StyleGAN2's leaky ReLU slope.
LRELU_GAIN = math.sqrt(2.0)  # Gain keeping activations at unit variance after leaky ReLU.


def assert_shape(tensor: torch.Tensor, shape: Sequence[int | None], name: str = "tensor") -> None:
    """Fail with the tensor's name if its shape differs from ``shape`` (None = any size).

    Arguments:
        tensor: The tensor to check.
        shape: Expected sizes; ``None`` matches any size along that dimension.
        name: Name used in the error message.

    Raises:
        ValueError: the rank or a size differs.
    """
    if tensor.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(tensor.shape, shape, strict=True)
    ):
        want_str = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{name}: expected shape {want_str}, got {list(tensor.shape)}")


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU with StyleGAN2's slope and variance-preserving gain."""
    return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN


def downsample2d(x: torch.Tensor) -> torch.Tensor:
    """Halve height and width with a 2×2 box filter (the anti-aliasing of the down path)."""
    return F.avg_pool2d(x, 2)


def upsample2d(x: torch.Tensor) -> torch.Tensor:
    """Double height and width with bilinear filtering (the [1, 3, 3, 1] FIR of StyleGAN2)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class FullyConnectedLayer(nn.Module):
    """Equalized-learning-rate linear layer with optional leaky ReLU."""

    def __init__(
        self,
        in_features: int,  # Number of input features.
        out_features: int,  # Number of output features.
        bias: bool = True,  # Add a learned bias?
        activation: bool = False,  # Apply leaky ReLU (with gain) after the bias?
        bias_init: float = 0.0,  # Initial value of the bias.
        lr_multiplier: float = 1.0,  # Learning-rate multiplier (StyleGAN's mapping uses 0.01).
        zero_init: bool = False,  # Start with all weights zero (layer outputs bias_init).
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        init = torch.zeros if zero_init else torch.randn
        self.weight = nn.Parameter(init(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, self.in_features], "FullyConnectedLayer input")
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype) * self.bias_gain
        x = F.linear(x, w, b)
        return lrelu(x) if self.activation else x

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}"


class Conv2dLayer(nn.Module):
    """Equalized-learning-rate 2-D convolution with optional 2× box downsampling first."""

    def __init__(
        self,
        in_channels: int,  # Number of input channels.
        out_channels: int,  # Number of output channels.
        kernel_size: int | tuple[int, int],  # Width and height of the convolution kernel.
        bias: bool = True,  # Add a learned bias?
        activation: bool = True,  # Apply leaky ReLU (with gain) after the bias?
        down: bool = False,  # Downsample 2× (box filter) before the convolution?
        stride: int | tuple[int, int] = 1,  # Convolution stride (audio towers use strides).
        padding: int | tuple[int, int] | None = None,  # None = "same" for odd kernels.
    ) -> None:
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.activation = activation
        self.down = down
        self.stride = stride
        self.padding = (kh // 2, kw // 2) if padding is None else padding
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kh, kw))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kh * kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, self.in_channels, None, None], "Conv2dLayer input")
        if self.down:
            x = downsample2d(x)
        w = self.weight.to(x.dtype) * self.weight_gain
        b = None if self.bias is None else self.bias.to(x.dtype)
        x = F.conv2d(x, w, b, stride=self.stride, padding=self.padding)
        return lrelu(x) if self.activation else x

    def extra_repr(self) -> str:
        k = tuple(self.weight.shape[2:])
        return f"in={self.in_channels}, out={self.out_channels}, k={k}, down={self.down}"


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution with optional weight demodulation (StyleGAN2 Eq. 1–3)."""

    def __init__(
        self,
        in_channels: int,  # Number of input channels.
        out_channels: int,  # Number of output channels.
        kernel_size: int,  # Width and height of the convolution kernel.
        w_dim: int,  # Intermediate latent (W) dimensionality.
        demodulate: bool = True,  # Apply Eq. 3 (ToRGB layers do not).
        up: bool = False,  # Upsample 2× (bilinear) before the convolution?
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.demodulate = demodulate
        self.up = up
        self.padding = kernel_size // 2
        # A: the learned affine map from w to the style s (bias 1 so s starts near 1).
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        assert_shape(x, [None, self.in_channels, None, None], "ModulatedConv2d input")
        assert_shape(w, [x.shape[0], self.w_dim], "ModulatedConv2d w")
        styles = self.affine(w)  # s, (N, Cin)
        weight = self.weight * self.weight_gain  # (Cout, Cin, k, k), fp32
        if self.up:
            x = upsample2d(x)
        # Eq. 1 in non-fused form: scale the input channels by s instead of the weights.
        x = x * styles.to(x.dtype)[:, :, None, None]
        x = F.conv2d(x, weight.to(x.dtype), padding=self.padding)
        if self.demodulate:
            # Eq. 3: d_j = 1 / sqrt(Σ_i,k (s_i w_ijk)² + ε), computed in fp32.
            # Elementwise product + sum rather than a matmul so autocast keeps it in fp32.
            wsq = weight.square().sum(dim=[2, 3])  # (Cout, Cin)
            ssq = styles.float().square()  # (N, Cin)
            dcoefs = ((ssq[:, None, :] * wsq[None]).sum(dim=2) + 1e-8).rsqrt()  # (N, Cout)
            x = x * dcoefs.to(x.dtype)[:, :, None, None]
        return x

    def extra_repr(self) -> str:
        k = self.weight.shape[-1]
        return (
            f"in={self.in_channels}, out={self.out_channels}, k={k}, "
            f"demod={self.demodulate}, up={self.up}"
        )
