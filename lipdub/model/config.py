"""Typed configurations of the networks: ``full`` (256×256) and ``lite`` (128×128).

The two configs are the same code with other numbers. A config is resolved once into these frozen
records and travels with every checkpoint as JSON (see :mod:`lipdub.model.checkpoint`), so a
checkpoint can only be loaded into the architecture it was trained with.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from lipdub.errors import ConfigError
from lipdub.manifest import config_digest


@dataclass(frozen=True)
class MelConfig:
    """Audio features: log-mel spectrogram windows aligned to video frames (see ``mel.py``).

    Defaults follow Wav2Lip's hparams (80 bands, 800-sample window, 200-sample hop, 55–7600 Hz,
    pre-emphasis 0.97, dB normalised to [-4, 4]) so that a 16-frame window spans 200 ms, which is
    exactly five video frames at 25 fps.
    """

    sample_rate: int = 16000  # Input sample rate in Hz; the media layer resamples to it.
    n_fft: int = 800  # FFT size = analysis window length in samples (50 ms).
    hop: int = 200  # Samples between the centres of consecutive mel frames (12.5 ms).
    n_mels: int = 80  # Mel bands.
    f_min: float = 55.0  # Lowest filter edge in Hz.
    f_max: float = 7600.0  # Highest filter edge in Hz.
    window_frames: int = 16  # Mel frames per window, centred on the video frame (200 ms).
    preemphasis: float = 0.97  # y[n] = x[n] - k x[n-1]; 0 disables it.
    ref_level_db: float = 20.0  # dB subtracted before normalisation.
    min_level_db: float = -100.0  # dB floor mapped to -max_abs_value.
    max_abs_value: float = 4.0  # Normalised features lie in [-max_abs_value, max_abs_value].


@dataclass(frozen=True)
class GeneratorConfig:
    """StyleSync generator: E_face, E_a, mapping, ΔW MLP, MaLS and a StyleGAN2 synthesis net."""

    name: str  # "full" or "lite" (or a custom name for experiments).
    resolution: int  # Crop side S; the synthesis net has L = 2·log2(S) − 2 style layers.
    channel_base: int  # Channels at resolution r are min(channel_base // r, channel_max).
    channel_max: int  # Upper bound on channels at any resolution.
    w_dim: int  # Intermediate latent (W) dimensionality.
    audio_dim: int  # Audio feature f_a dimensionality.
    face_dim: int  # Face bottleneck f_f dimensionality.
    audio_channels: int  # Channels of E_a's first convolution (doubled at each downsampling).
    mapping_layers: int  # Fully connected layers mapping concat(f_a, f_f) to w.
    delta_hidden: int  # Hidden width of MLP_Δw (personalization offset).
    mals_hidden: int  # Hidden channels of each MaLS temporal conv stack.
    mals_depth: int  # Convolutions per MaLS stack (kernel 3, reflection padding 1).
    mel: MelConfig = field(default_factory=MelConfig)  # Audio front end.
    # Learned per-channel gates that let the masked region of the high-resolution encoder maps
    # through Eq. 1 (zero at init = the paper's Eq. 1; see docs/model.md, "Reference gate").
    reference_gate: bool = False

    @property
    def num_layers(self) -> int:
        """L, the number of style-modulated convolutions (14 at 256, 12 at 128)."""
        return 2 * (self.resolution.bit_length() - 1) - 2

    def channels(self, res: int) -> int:
        """Feature channels at resolution ``res`` (shared by encoder, synthesis, discriminator)."""
        return min(self.channel_base // res, self.channel_max)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (nested ``mel``).

        Optional features (:data:`OPTIONAL_FIELDS`) are left out while off, so configs written
        before they existed keep their digest and their checkpoints keep loading.
        """
        data = dataclasses.asdict(self)
        for name, off in OPTIONAL_FIELDS.items():
            if data[name] == off:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        """Inverse of :meth:`to_dict`; unknown or missing keys raise :class:`ConfigError`."""
        data = dict(data)
        mel = MelConfig(**data.pop("mel", {}))
        names = {f.name for f in dataclasses.fields(cls)} - {"mel"}
        if set(data) - names or names - set(data) - set(OPTIONAL_FIELDS):
            raise ConfigError(
                f"generator config keys differ: unknown {sorted(set(data) - names)}, "
                f"missing {sorted(names - set(data) - set(OPTIONAL_FIELDS))}"
            )
        return cls(mel=mel, **data)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON of this config (stored in checkpoints)."""
        return config_digest(self.to_dict())


#: Generator config fields that may be absent (older checkpoints), with the value that means "off".
OPTIONAL_FIELDS: dict[str, Any] = {"reference_gate": False}


@dataclass(frozen=True)
class SyncNetConfig:
    """SyncNet (the lip-sync expert): grey mouth boxes of 5 frames against one mel window."""

    resolution: int = 96  # Aligned crops are area-resized to S×S before the mouth box is cut.
    num_frames: int = 5  # Consecutive frames stacked on channels.
    # Mouth box as fractions of the crop side: top, bottom, left, right. The default holds the
    # lips and chin of lipdub's eye-aligned template with margin for the ±5 % scale augmentation.
    mouth_box: tuple[float, float, float, float] = (0.375, 0.875, 0.25, 0.75)
    channels: tuple[int, ...] = (32, 64, 128, 256)  # Visual tower widths (one stride-2 each).
    audio_channels: tuple[int, ...] = (16, 32, 64, 128)  # Audio tower widths (stride 2 each).
    embed_dim: int = 256  # Embedding dimensionality of both towers.
    mel: MelConfig = field(default_factory=MelConfig)  # Audio front end (same as generator).

    def __post_init__(self) -> None:
        top, bottom, left, right = self.mouth_box
        if not (0 <= top < bottom <= 1 and 0 <= left < right <= 1):
            raise ConfigError(f"SyncNet mouth_box {self.mouth_box} is not a box inside the crop")

    @property
    def mouth_pixels(self) -> tuple[int, int, int, int]:
        """The mouth box in pixels of the S×S crop: top, bottom, left, right."""
        s = self.resolution
        top, bottom, left, right = (round(f * s) for f in self.mouth_box)
        return top, bottom, left, right

    @property
    def mouth_shape(self) -> tuple[int, int]:
        """(height, width) of the mouth box in pixels."""
        top, bottom, left, right = self.mouth_pixels
        return bottom - top, right - left


# 256×256: encoder + synthesis of StyleGAN2-256 shape with channel_base 8192 (32 channels at 256,
# 256 channels from 32×32 down), ≈ 20 GFLOPs per frame; see bench/results.md.
FULL = GeneratorConfig(
    name="full",
    resolution=256,
    channel_base=8192,
    channel_max=256,
    w_dim=512,
    audio_dim=256,
    face_dim=256,
    audio_channels=32,
    mapping_layers=4,
    delta_hidden=128,
    mals_hidden=64,
    mals_depth=2,
)

# 128×128 for CPU: the same code with half the channels of FULL at each resolution (16 at 128).
LITE = GeneratorConfig(
    name="lite",
    resolution=128,
    channel_base=2048,
    channel_max=256,
    w_dim=256,
    audio_dim=128,
    face_dim=128,
    audio_channels=16,
    mapping_layers=4,
    delta_hidden=64,
    mals_hidden=32,
    mals_depth=2,
)

CONFIGS: dict[str, GeneratorConfig] = {"full": FULL, "lite": LITE}


def get_config(name: str) -> GeneratorConfig:
    """Look up a named generator config.

    Arguments:
        name: ``"full"`` or ``"lite"``.

    Returns:
        The frozen config.

    Raises:
        ConfigError: the name is unknown.
    """
    try:
        return CONFIGS[name]
    except KeyError:
        raise ConfigError(
            f"unknown generator config {name!r}; choose one of {sorted(CONFIGS)}"
        ) from None
