"""The exemplar path's audio driver: dub audio (any language) → a target mouth shape per frame.

A mouth shape (:mod:`lipdub.analysis.mouth_shape`) is 20 points × 2 = 40 numbers. The driver
speaks a K-dimensional PCA of them,

    s_t ≈ μ + Σ_k c_t,k · b_k              (μ: mean shape, b_k: orthonormal rows of B)

fitted on training shapes after removing each clip's own mean shape, so the components describe
how a mouth *moves* (b_1: opening), not how mouths differ between people. Per frame and per
component the network predicts a z-score

    z_t,k = (c_t,k − mean_clip c_k) / std_clip c_k

— how far this frame's mouth is from the speaker's usual one, in the speaker's own units: what the
audio can say about a mouth without knowing whose mouth it is. :func:`map_to_actor` turns z back
into coefficients in the range the actor's own footage shows,

    ĉ_t,k = mean_actor c_k + z_t,k · std_actor c_k,   clipped to the actor's [q01, q99]

so an actor who barely opens their mouth is not given a yawn.

Input normalisation (:class:`BandStats`): each mel band is standardised over the track being
driven — all the frames :meth:`Driver.predict` is asked for together, a whole clip in training —
which takes out the recording's level and much of the voice's timbre: the audio counterpart of
the per-clip z-scores of the targets. Call :meth:`Driver.predict` once per track, not per frame
(fewer than :data:`MIN_STATS_FRAMES` frames take their statistics from a span that long).

Network (:class:`MouthDriverNet`): a per-frame mel encoder (stride-2 convolutions over the
window's W mel frames, the n_mels bands as channels) followed by a non-causal stack of 1-D
convolutions over video frames *without padding*: T + 2r frames of audio give T frames of z, r
frames of context each side. :class:`Driver` runs it in chunks with r frames of real audio context
around each, so a chunked track gives what an unchunked one would. The network does no I/O;
:func:`load_driver` reads a checkpoint through the manifest and the project's checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn

from lipdub.analysis.mouth_shape import MOUTH_POINTS
from lipdub.errors import WeightsError
from lipdub.model.checkpoint import checkpoint_file, load_manifest, load_state, verified_record
from lipdub.model.config import MelConfig
from lipdub.model.layers import assert_shape
from lipdub.model.mel import MelFrontend

KIND = "mouth-driver"  # Checkpoint kind in the manifest and the JSON.
SHAPE_DIM = MOUTH_POINTS * 2  # 40 numbers per mouth shape.
CHUNK_FRAMES = 256  # Frames per forward pass at inference (bounds memory on long dubs).
# map_to_actor's clip range: the actor's 1st and 99th percentile of each coefficient.
ACTOR_QUANTILES = (0.01, 0.99)
MIN_ACTOR_STD = 1e-6  # An actor std below this is treated as "this component never moves".
MIN_STATS_FRAMES = 50  # Fewest frames the input normalisation's statistics are taken over.
BAND_STD_FLOOR = 0.1  # Floor of a band's std in that normalisation (mel units: range ±4).


@dataclass(frozen=True)
class DriverConfig:
    """Architecture of :class:`MouthDriverNet` (stored with the weights)."""

    components: int = 8  # K: PCA components of the mouth shape predicted per frame.
    channels: tuple[int, ...] = (64, 64)  # Mel encoder: one stride-2 conv (over time) per width.
    embed: int = 64  # Per-frame audio feature size.
    hidden: int = 64  # Width of the temporal convolutions.
    kernel: int = 5  # Temporal kernel in frames (odd).
    layers: int = 2  # Temporal convolutions; context r = layers · (kernel // 2) frames a side.
    dropout: float = 0.1  # Dropout after each temporal convolution (training only).
    mel: MelConfig = field(default_factory=MelConfig)  # Audio features (per-frame windows).

    @property
    def context(self) -> int:
        """r: frames of audio needed on each side of a predicted frame."""
        return self.layers * (self.kernel // 2)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["channels"] = list(self.channels)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriverConfig:
        """Inverse of :meth:`to_dict`.

        Raises:
            WeightsError: not a driver config of this lipdub version.
        """
        data = dict(data)
        try:
            mel = MelConfig(**data.pop("mel"))
            return cls(mel=mel, **{**data, "channels": tuple(data["channels"])})
        except (KeyError, TypeError) as exc:
            raise WeightsError(f"not a mouth-driver config of this lipdub version: {exc}") from None


class MouthDriverNet(nn.Module):
    """(B, T + 2r, 1, n_mels, W) mel windows → (B, T, K) z-scores; holds the PCA basis too."""

    mean_shape: torch.Tensor  # Buffers: μ (40,) and B (K, 40), see set_basis.
    basis: torch.Tensor

    def __init__(self, cfg: DriverConfig = DriverConfig()) -> None:
        super().__init__()
        if cfg.kernel % 2 != 1:
            raise ValueError(f"temporal kernel must be odd, got {cfg.kernel}")
        self.cfg = cfg
        layers: list[nn.Module] = []
        c_in, w = cfg.mel.n_mels, cfg.mel.window_frames  # Mel bands are the input channels.
        for c in cfg.channels:
            layers += [
                nn.Conv1d(c_in, c, 3, stride=2, padding=1),
                nn.BatchNorm1d(c),
                nn.ReLU(inplace=True),
            ]
            c_in, w = c, (w + 1) // 2
        layers += [nn.Flatten(), nn.Linear(c_in * w, cfg.embed), nn.ReLU(inplace=True)]
        self.encoder = nn.Sequential(*layers)
        temporal: list[nn.Module] = []
        c_in = cfg.embed
        for _ in range(cfg.layers):  # Valid convolutions: each trims kernel // 2 frames a side.
            temporal += [
                nn.Conv1d(c_in, cfg.hidden, cfg.kernel),
                nn.ReLU(inplace=True),
                nn.Dropout(cfg.dropout),
            ]
            c_in = cfg.hidden
        self.temporal = nn.Sequential(*temporal)
        self.head = nn.Conv1d(c_in, cfg.components, 1)
        # The PCA basis (μ, B) of the module doc, fitted by the trainer and saved with the weights.
        self.register_buffer("mean_shape", torch.zeros(SHAPE_DIM))
        self.register_buffer("basis", torch.zeros(cfg.components, SHAPE_DIM))

    def set_basis(self, mean_shape: np.ndarray, basis: np.ndarray) -> None:
        """Install a fitted basis: ``mean_shape`` (40,) and ``basis`` (K, 40), orthonormal rows."""
        k = self.cfg.components
        if mean_shape.shape != (SHAPE_DIM,) or basis.shape != (k, SHAPE_DIM):
            raise ValueError(
                f"basis: expected ({SHAPE_DIM},) and ({k}, {SHAPE_DIM}), "
                f"got {mean_shape.shape} and {basis.shape}"
            )
        self.mean_shape.copy_(torch.from_numpy(np.asarray(mean_shape, np.float32)))
        self.basis.copy_(torch.from_numpy(np.asarray(basis, np.float32)))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        c, r = self.cfg, self.cfg.context
        assert_shape(mel, [None, None, 1, c.mel.n_mels, c.mel.window_frames], "driver mel")
        b, t = mel.shape[:2]
        if t <= 2 * r:
            raise ValueError(f"driver mel: {t} frames, need more than 2·{r} (the context)")
        f = self.encoder(mel.flatten(0, 2)).view(b, t, -1).transpose(1, 2)  # (B, E, T + 2r)
        z = self.head(self.temporal(f))  # (B, K, T)
        return z.transpose(1, 2)


@dataclass(frozen=True)
class BandStats:
    """Per-band mean and std of a track's mel windows: the network's input normalisation."""

    mean: torch.Tensor  # (n_mels,)
    std: torch.Tensor  # (n_mels,), floored at BAND_STD_FLOOR.

    @classmethod
    def of(cls, windows: Iterable[torch.Tensor]) -> BandStats:
        """Statistics over every mel frame of every window; ``windows`` yields
        (K, 1, n_mels, W) tensors (chunks of one track).

        Raises:
            ValueError: no windows.
        """
        total = total_sq = torch.zeros((), dtype=torch.float64)  # Broadcasts to (n_mels,).
        n = 0
        for w in windows:
            x = w.double().transpose(-1, -2).reshape(-1, w.shape[-2])  # (K·W, n_mels)
            total, total_sq, n = total + x.sum(0), total_sq + (x**2).sum(0), n + len(x)
        if n == 0:
            raise ValueError("band statistics of no windows")
        mean = total / n
        std = (total_sq / n - mean**2).clamp_min(0).sqrt().clamp_min(BAND_STD_FLOOR)
        return cls(mean.float(), std.float())

    def apply(self, windows: torch.Tensor) -> torch.Tensor:
        """(..., n_mels, W) windows with each band standardised."""
        return (windows - self.mean[:, None]) / self.std[:, None]


def stats_frames(frames: np.ndarray) -> np.ndarray:
    """The frames whose windows a track's :class:`BandStats` are taken over: the track's own
    (unique), or :data:`MIN_STATS_FRAMES` consecutive frames centred on a shorter one."""
    uniq = np.unique(np.asarray(frames, np.int64))
    if len(uniq) >= MIN_STATS_FRAMES or not len(uniq):
        return uniq
    first = (int(uniq[0]) + int(uniq[-1])) // 2 - MIN_STATS_FRAMES // 2
    return np.arange(first, first + MIN_STATS_FRAMES)


class Driver:
    """Inference wrapper: the basis's projections and the network run over a dub's frames.

    Arguments:
        net: a trained :class:`MouthDriverNet` (switched to eval mode, kept on the CPU).
        name: label for logs and reports (manifest name or file).
    """

    def __init__(self, net: MouthDriverNet, name: str = "") -> None:
        self.net = net.eval().requires_grad_(False)
        self.cfg = net.cfg
        self.name = name
        self.mel = MelFrontend(net.cfg.mel)
        self._mean = net.mean_shape.numpy().astype(np.float64)
        self._basis = net.basis.numpy().astype(np.float64)

    @property
    def components(self) -> int:
        """K, the number of PCA coefficients per frame."""
        return self.cfg.components

    @property
    def mean_shape(self) -> np.ndarray:
        """μ (40,), the checkpoint's mean shape (float64)."""
        return self._mean

    @property
    def basis(self) -> np.ndarray:
        """B (K, 40), the checkpoint's basis, orthonormal rows (float64)."""
        return self._basis

    def project(self, shapes: np.ndarray) -> np.ndarray:
        """(N, 20, 2) mouth shapes → (N, K) float32 coefficients c = B·(s − μ)."""
        shapes = np.asarray(shapes, np.float64)
        if shapes.ndim != 3 or shapes.shape[1:] != (MOUTH_POINTS, 2):
            raise ValueError(f"shapes: expected (N, {MOUTH_POINTS}, 2), got {shapes.shape}")
        return ((shapes.reshape(len(shapes), SHAPE_DIM) - self._mean) @ self._basis.T).astype(
            np.float32
        )

    def unproject(self, coef: np.ndarray) -> np.ndarray:
        """(N, K) coefficients → (N, 20, 2) float32 mouth shapes s = μ + Bᵀ·c."""
        coef = np.asarray(coef, np.float64)
        if coef.ndim != 2 or coef.shape[1] != self.components:
            raise ValueError(f"coef: expected (N, {self.components}), got {coef.shape}")
        return (coef @ self._basis + self._mean).reshape(-1, MOUTH_POINTS, 2).astype(np.float32)

    @torch.no_grad()
    def predict(self, audio_16k: np.ndarray, fps: Fraction, frames: np.ndarray) -> np.ndarray:
        """Per-frame z-scores (module doc) of the mouth for the audio at the given video frames.

        Arguments:
            audio_16k: (N,) float32 mono dub audio at 16 kHz; sample 0 is frame 0's start.
            fps: exact frame rate of the video the frames belong to.
            frames: (T,) frame numbers of one track, any order. The input is normalised over
                them all (module doc), so pass the whole track at once.

        Returns:
            (T, K) float32, row i for ``frames[i]``. Deterministic; CPU; memory bounded by
            :data:`CHUNK_FRAMES` whatever the dub's length.
        """
        frames = np.asarray(frames, np.int64).reshape(-1)
        out = np.zeros((len(frames), self.components), np.float32)
        if not len(frames):
            return out
        order = np.argsort(frames, kind="stable")
        uniq, inverse = np.unique(frames[order], return_inverse=True)
        z = np.zeros((len(uniq), self.components), np.float32)
        r, rate = self.cfg.context, self.cfg.mel.sample_rate
        span = stats_frames(uniq)
        stats = BandStats.of(
            self.mel.windows(audio_16k, fps, span[a : a + CHUNK_FRAMES], rate)
            for a in range(0, len(span), CHUNK_FRAMES)
        )
        breaks = np.flatnonzero(np.diff(uniq) != 1) + 1  # Runs of consecutive frames.
        for run in np.split(np.arange(len(uniq)), breaks):
            for a in range(0, len(run), CHUNK_FRAMES):
                idx = run[a : a + CHUNK_FRAMES]
                around = np.arange(uniq[idx[0]] - r, uniq[idx[-1]] + r + 1)
                mel = stats.apply(self.mel.windows(audio_16k, fps, around, rate))
                z[idx] = self.net(mel[None])[0].numpy()
        out[order] = z[inverse]
        return out


def map_to_actor(z: np.ndarray, actor_coef: np.ndarray, clip: bool = True) -> np.ndarray:
    """Predicted z-scores → coefficients in one actor's range (module doc).

    Arguments:
        z: (T, K) z-scores from :meth:`Driver.predict`.
        actor_coef: (N, K) coefficients of the actor's own frames (:meth:`Driver.project` of their
            bank's shapes).
        clip: clip each coefficient to the actor's [q01, q99] (:data:`ACTOR_QUANTILES`).

    Returns:
        (T, K) float32 coefficients ĉ = mean + z · std, per component.

    Raises:
        ValueError: shapes that do not match, or no actor frames.
    """
    z = np.asarray(z, np.float64)
    actor = np.asarray(actor_coef, np.float64)
    if z.ndim != 2 or actor.ndim != 2 or z.shape[1] != actor.shape[1] or not len(actor):
        raise ValueError(
            f"z (T, K) and actor_coef (N > 0, K) expected, got {z.shape}, {actor.shape}"
        )
    mean, std = actor.mean(0), actor.std(0)
    out = mean + z * np.where(std < MIN_ACTOR_STD, 0.0, std)
    if clip:
        lo, hi = np.quantile(actor, ACTOR_QUANTILES, axis=0)
        out = np.clip(out, lo, hi)
    return out.astype(np.float32)


def load_driver(name_or_path: str | None = None, manifest: Path | None = None) -> Driver:
    """A :class:`Driver` from a manifest name (kind "mouth-driver"), a ``.safetensors`` path, or
    (None) the manifest's ``default_driver`` where that is a checkpoint (the shipped default,
    ``viseme-table``, is rule-based: :func:`lipdub.exemplar.target.open_driver` builds it).

    Raises:
        WeightsError: no such checkpoint or default, another kind, a failed SHA-256 or config
            check, or tensors that do not fit.
    """
    if name_or_path is None:
        m = load_manifest(manifest)
        name_or_path = m.default_driver
        if name_or_path is None:
            raise WeightsError(f"{m.path}: no mouth driver named and no default_driver set")
    path, entry = checkpoint_file(str(name_or_path), KIND, KIND, manifest)
    record = verified_record(path, KIND, "mouth driver", entry.sha256 if entry else None)
    net = MouthDriverNet(DriverConfig.from_dict(record["config"]))
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    load_state(net, state, path)  # fp16 files load into fp32.
    return Driver(net, f"{entry.name} ({entry.file})" if entry else str(path))
