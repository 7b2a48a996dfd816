"""lipdub.model: StyleSync generator, MaLS, SyncNet, discriminator, audio features, checkpoints.

Network modules (layers, encoders, generator, mals, syncnet, discriminator) do no I/O;
``mel`` turns 16 kHz audio into per-frame mel windows, ``checkpoint`` and ``personal`` read and
write safetensors files, and ``engine`` runs a generator over a face track. See docs/model.md.
"""

from lipdub.model.config import FULL, LITE, GeneratorConfig, MelConfig, SyncNetConfig, get_config

__all__ = ["FULL", "LITE", "GeneratorConfig", "MelConfig", "SyncNetConfig", "get_config"]
