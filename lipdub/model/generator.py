"""The StyleSync generator (Guan et al., CVPR 2023) with StyleLipSync's MaLS and ΔW.

Per frame t of a track, with mask M (1 = mouth region to regenerate):

    I_t^m       = (1 − M) · I_t                            masked target
    f_f, {F_r}  = E_face([I_t^m ‖ I_ref])                   bottleneck + maps at r = 4..S
    f_a         = E_a(mel window of frame t)
    w           = mapping(concat(f_a, f_f))                 broadcast to the L style layers
    w          ← w_0 + s·(w − w_0),  w_0 = w of silence       only at inference, s ≠ 1 (below)
    w_l        += ΔW_l,  ΔW = MLP_Δw(f_f)                   zero in the general model
    ŵ           = MaLS(w_1..w_T)                            over the track (mals.py)
    Eq. 1:  F'_l = (1 − M) · F_l  for l > ⌊L/2⌋,  F'_l = F_l otherwise
    I_t^g       = G(ŵ; noise inputs F'_1..F'_L)             StyleGAN2 synthesis, ToRGB skips

Audio scale s (``encode(..., audio_scale=s)``): the mouth's departure from the one the same
frame gets from digital silence, scaled in W space (guidance, as classifier-free guidance scales a
conditional model's departure from its unconditional output). s = 1 is the trained model; s > 1
exaggerates what the audio does (on ``lite-v3`` it opens the mouth further but moves the other lip
points off: weights/MODEL_CARD.md). Silence is exactly what lipdub feeds for a mute dub, so w_0
is the model's own prediction for the frame without speech, not a made-up neutral input.

The synthesis network has L = 2·log2(S) − 2 style-modulated 3×3 convolutions (14 at 256): two at
4×4 (the first on a learned constant) and, at each r = 8..S, one that upsamples and one that does
not. Layer l's noise input is the encoder map at its resolution; each ToRGB uses its block's last
w, so W⁺ has exactly L entries.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from lipdub.model.config import GeneratorConfig
from lipdub.model.encoders import AudioEncoder, FaceEncoder
from lipdub.model.layers import (
    FullyConnectedLayer,
    ModulatedConv2d,
    assert_shape,
    lrelu,
    upsample2d,
)
from lipdub.model.mals import MaLS


class SynthesisLayer(nn.Module):
    """Modulated 3×3 conv + encoder feature as noise input + bias + leaky ReLU."""

    def __init__(
        self,
        in_channels: int,  # Number of input channels.
        out_channels: int,  # Number of output channels (= the encoder's at this resolution).
        w_dim: int,  # Intermediate latent (W) dimensionality.
        resolution: int,  # Output resolution of this layer.
        up: bool,  # Upsample 2× before the convolution?
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.resolution = resolution
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, up=up)
        # Per-channel strength of the injected feature (StyleGAN2's per-layer noise strength,
        # per channel because the "noise" here is a multi-channel encoder map). Starts at 1.
        self.feat_strength = nn.Parameter(torch.ones(out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        n, r = x.shape[0], self.resolution
        assert_shape(feat, [n, self.out_channels, r, r], f"noise input at {r}x{r}")
        x = self.conv(x, w)
        x = x + feat.to(x.dtype) * self.feat_strength.to(x.dtype)[:, None, None]
        return lrelu(x + self.bias.to(x.dtype)[:, None, None])


class ToRGB(nn.Module):
    """Modulated 1×1 conv to RGB without demodulation (StyleGAN2's skip-generator output)."""

    def __init__(
        self,
        in_channels: int,  # Number of input channels.
        w_dim: int,  # Intermediate latent (W) dimensionality.
    ) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, 3, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(3))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias.to(x.dtype)[:, None, None]


#: What the reference gates' parameter names contain (``synthesis.ref_gates.<i>``).
REF_GATES = ".ref_gates."


class SynthesisNetwork(nn.Module):
    """StyleGAN2 skip generator whose noise inputs are the (Eq. 1-masked) encoder features."""

    def __init__(
        self,
        cfg: GeneratorConfig,  # Resolution, channels, w_dim.
    ) -> None:
        super().__init__()
        self.resolution = cfg.resolution
        self.w_dim = cfg.w_dim
        self.num_layers = cfg.num_layers  # L
        self.resolutions = [2**i for i in range(2, cfg.resolution.bit_length())]  # 4..S
        self.const = nn.Parameter(torch.randn(cfg.channels(4), 4, 4))
        layers, torgbs = [], []
        for r in self.resolutions:
            c_in = cfg.channels(4) if r == 4 else cfg.channels(r // 2)
            layers.append(SynthesisLayer(c_in, cfg.channels(r), cfg.w_dim, r, up=r > 4))
            layers.append(SynthesisLayer(cfg.channels(r), cfg.channels(r), cfg.w_dim, r, up=False))
            torgbs.append(ToRGB(cfg.channels(r), cfg.w_dim))
        self.layers = nn.ModuleList(layers)
        self.torgbs = nn.ModuleList(torgbs)
        assert len(self.layers) == self.num_layers
        # Reference gate g_l (one per channel of each masked layer): F'_l = (1 − M)·F_l +
        # g_l·M·F_l. Inside the mask the encoder map is mostly the reference's (the masked target
        # is zero there), so g_l lets the reference's mouth detail reach the high-resolution
        # layers in the measure training finds useful. Zero at init: exactly Eq. 1.
        self.ref_gates = (
            nn.ParameterList(
                nn.Parameter(torch.zeros(cfg.channels(self.layer_resolution(i))))
                for i in range(self.num_layers)
                if self.is_masked(i)
            )
            if cfg.reference_gate
            else None
        )

    def layer_resolution(self, index: int) -> int:
        """Resolution of style layer ``index`` (0-based; layer l = index + 1 in the paper)."""
        return 4 * 2 ** (index // 2)

    def is_masked(self, index: int) -> bool:
        """Eq. 1 applies to layer l = index + 1 when l > ⌊L/2⌋ (the high-resolution half)."""
        return index + 1 > self.num_layers // 2

    def noise_inputs(self, feats: list[torch.Tensor], mask: torch.Tensor) -> list[torch.Tensor]:
        """Turn the encoder maps into the L noise inputs, applying Eq. 1.

        Arguments:
            feats: ``[F_4, F_8, ..., F_S]`` from :class:`FaceEncoder` (increasing resolution).
            mask: (N, 1, S, S) mask M in [0, 1], 1 = region to regenerate.

        Returns:
            L tensors F'_l; layer l uses its resolution's map, and
            F'_l = (1 − M_r) · F_r for l > ⌊L/2⌋, with M_r = M area-averaged to r × r
            (plus g_l · M_r · F_r with the reference gate).
        """
        n = mask.shape[0]
        assert_shape(mask, [n, 1, self.resolution, self.resolution], "mask M")
        if len(feats) != len(self.resolutions):
            raise ValueError(f"expected {len(self.resolutions)} feature maps, got {len(feats)}")
        keep = {}  # (1 − M_r) per resolution, computed once.
        out = []
        gates = iter(self.ref_gates) if self.ref_gates is not None else None
        for i in range(self.num_layers):
            r = self.layer_resolution(i)
            feat = feats[i // 2]
            if self.is_masked(i):
                if r not in keep:
                    m = mask if r == self.resolution else F.adaptive_avg_pool2d(mask, r)
                    keep[r] = 1.0 - m
                k = keep[r].to(feat.dtype)
                if gates is None:
                    feat = feat * k  # Eq. 1: F'_l = (1 − M) * F_l.
                else:
                    g = next(gates).to(feat.dtype)[:, None, None]
                    feat = feat * (k + g * (1 - k))
            out.append(feat)
        return out

    def forward(self, ws: torch.Tensor, noises: list[torch.Tensor]) -> torch.Tensor:
        """Synthesize images.

        Arguments:
            ws: (N, L, w_dim) W⁺ latents (after MaLS).
            noises: the L noise inputs from :meth:`noise_inputs`.

        Returns:
            (N, 3, S, S) float32 images, nominally in [-1, 1].
        """
        n = ws.shape[0]
        assert_shape(ws, [n, self.num_layers, self.w_dim], "synthesis ws")
        x = self.const.to(noises[0].dtype)[None].expand(n, -1, -1, -1)
        img = None
        for b, torgb in enumerate(self.torgbs):
            i0, i1 = 2 * b, 2 * b + 1
            x = self.layers[i0](x, ws[:, i0], noises[i0])
            x = self.layers[i1](x, ws[:, i1], noises[i1])
            y = torgb(x, ws[:, i1]).float()
            img = y if img is None else upsample2d(img) + y
        assert img is not None, "a synthesis network has at least one block"
        return img


class MappingNetwork(nn.Module):
    """w = mapping(concat(f_a, f_f)): a small MLP with leaky ReLUs."""

    def __init__(
        self,
        in_features: int,  # audio_dim + face_dim.
        w_dim: int,  # Intermediate latent (W) dimensionality.
        num_layers: int,  # Number of fully connected layers.
    ) -> None:
        super().__init__()
        dims = [in_features] + [w_dim] * num_layers
        self.fcs = nn.Sequential(
            *(FullyConnectedLayer(a, b, activation=True) for a, b in itertools.pairwise(dims))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fcs(x)


class DeltaW(nn.Module):
    """ΔW = MLP_Δw(f_f): a per-layer latent offset for personalization (zero at init)."""

    def __init__(
        self,
        face_dim: int,  # Face bottleneck f_f dimensionality.
        hidden: int,  # Hidden width.
        num_layers: int,  # L, one offset per style layer.
        w_dim: int,  # Intermediate latent (W) dimensionality.
    ) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.w_dim = w_dim
        self.fc0 = FullyConnectedLayer(face_dim, hidden, activation=True)
        # Zero-initialised last layer: the general model is unchanged until personalization.
        self.fc1 = FullyConnectedLayer(hidden, num_layers * w_dim, zero_init=True)

    def forward(self, f_f: torch.Tensor) -> torch.Tensor:
        """(N, face_dim) → (N, L, w_dim)."""
        return self.fc1(self.fc0(f_f)).view(-1, self.num_layers, self.w_dim)


class StyleSyncGenerator(nn.Module):
    """E_face + E_a + mapping + ΔW + MaLS + synthesis; see the module docstring."""

    def __init__(
        self,
        cfg: GeneratorConfig,  # Architecture numbers (``FULL`` or ``LITE``).
        with_delta_w: bool = True,  # Build MLP_Δw (zero-initialised) for personalization.
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.resolution = cfg.resolution
        self.num_layers = cfg.num_layers
        self.w_dim = cfg.w_dim
        self.face_encoder = FaceEncoder(cfg)  # E_face
        self.audio_encoder = AudioEncoder(cfg.mel, cfg.audio_channels, cfg.audio_dim)  # E_a
        self.mapping = MappingNetwork(cfg.audio_dim + cfg.face_dim, cfg.w_dim, cfg.mapping_layers)
        self.delta_w = (
            DeltaW(cfg.face_dim, cfg.delta_hidden, cfg.num_layers, cfg.w_dim)
            if with_delta_w
            else None
        )
        self.mals = MaLS(cfg.num_layers, cfg.w_dim, cfg.mals_hidden, cfg.mals_depth)
        self.synthesis = SynthesisNetwork(cfg)

    def encode(
        self,
        target: torch.Tensor,
        reference: torch.Tensor,
        mask: torch.Tensor,
        mel: torch.Tensor,
        audio_scale: float = 1.0,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Per-frame encoding, before MaLS.

        Arguments:
            target: (N, 3, S, S) target crops I_t in [-1, 1] (masked here).
            reference: (N, 3, S, S) reference crops I_ref in [-1, 1].
            mask: (N, 1, S, S) mask M in [0, 1].
            mel: (N, 1, n_mels, window) mel windows of the frames.
            audio_scale: s in w_0 + s·(w − w_0) (module docstring); 1 skips the silent pass.

        Returns:
            W⁺ (N, L, w_dim) including ΔW, and the encoder maps ``[F_4, ..., F_S]``.
        """
        n, s = target.shape[0], self.resolution
        assert_shape(target, [n, 3, s, s], "target")
        assert_shape(reference, [n, 3, s, s], "reference")
        assert_shape(mask, [n, 1, s, s], "mask")
        masked = target * (1.0 - mask)  # I_t^m
        f_f, feats = self.face_encoder(torch.cat([masked, reference], dim=1))
        f_a = self.audio_encoder(mel)
        w = self.mapping(torch.cat([f_a, f_f], dim=1))
        if audio_scale != 1.0:
            f_0 = self.audio_encoder(self.silent_mel(mel))
            w_0 = self.mapping(torch.cat([f_0, f_f], dim=1))
            w = w_0 + audio_scale * (w - w_0)
        ws = w[:, None].expand(-1, self.num_layers, -1)
        if self.delta_w is not None:
            ws = ws + self.delta_w(f_f)  # w_l + ΔW_l
        return ws, feats

    def silent_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """Mel windows of digital silence shaped like ``mel``.

        ``MelFrontend`` floors the log-mel at −max_abs_value, which is what an all-zero waveform
        gives in every bin (a test pins the two together).
        """
        return torch.full_like(mel, -self.cfg.mel.max_abs_value)

    def synthesize(
        self, ws: torch.Tensor, feats: list[torch.Tensor], mask: torch.Tensor
    ) -> torch.Tensor:
        """Images from smoothed W⁺ (N, L, w_dim), encoder maps and mask (Eq. 1 applied here)."""
        return self.synthesis(ws, self.synthesis.noise_inputs(feats, mask))

    def forward(
        self,
        target: torch.Tensor,
        reference: torch.Tensor,
        mask: torch.Tensor,
        mel: torch.Tensor,
    ) -> torch.Tensor:
        """Generate windows of consecutive frames (training: T = 5), MaLS over each window.

        Arguments:
            target: (N, T, 3, S, S) consecutive target crops in [-1, 1].
            reference: (N, 3, S, S) one reference per window.
            mask: (N, T, 1, S, S) masks in [0, 1].
            mel: (N, T, 1, n_mels, window) mel windows.

        Returns:
            (N, T, 3, S, S) generated frames.
        """
        n, t, s = target.shape[0], target.shape[1], self.resolution
        assert_shape(target, [n, t, 3, s, s], "target")
        assert_shape(reference, [n, 3, s, s], "reference")
        assert_shape(mask, [n, t, 1, s, s], "mask")
        assert_shape(mel, [n, t, 1, None, None], "mel")
        flat_ref = reference[:, None].expand(-1, t, -1, -1, -1).flatten(0, 1)
        flat_mask = mask.flatten(0, 1)
        ws, feats = self.encode(target.flatten(0, 1), flat_ref, flat_mask, mel.flatten(0, 1))
        ws = self.mals(ws.view(n, t, self.num_layers, self.w_dim)).flatten(0, 1)
        return self.synthesize(ws, feats, flat_mask).view(n, t, 3, s, s)
