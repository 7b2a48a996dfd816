"""SyncNet checkpoints: the config as JSON, and loading one verified, by path or manifest name
(for training, AV offsets, evaluation and QC alike)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from lipdub.errors import WeightsError
from lipdub.model.checkpoint import checkpoint_file, load_manifest, load_state, verified_record
from lipdub.model.config import MelConfig, SyncNetConfig
from lipdub.model.syncnet import SyncNet


def syncnet_config_dict(cfg: SyncNetConfig) -> dict[str, Any]:
    """JSON-able dict of a SyncNet config."""
    return dataclasses.asdict(cfg)


def syncnet_config_from_dict(data: dict[str, Any]) -> SyncNetConfig:
    """Inverse of :func:`syncnet_config_dict`."""
    data = dict(data)
    mel = MelConfig(**data.pop("mel", {}))
    tuples = {k: tuple(v) for k, v in data.items() if isinstance(v, list)}
    try:
        return SyncNetConfig(mel=mel, **{**data, **tuples})
    except TypeError as exc:  # A checkpoint of another SyncNet architecture (e.g. v1).
        raise WeightsError(f"not a SyncNet config of this lipdub version: {exc}") from None


def load_syncnet(path: Path, expected_sha256: str | None = None) -> SyncNet:
    """Load a SyncNet checkpoint after checking its SHA-256 and config digest (eval mode, CPU).

    Raises:
        WeightsError: missing file or config, hash or config mismatch, tensors that do not fit.
    """
    record = verified_record(path, "syncnet", "SyncNet", expected_sha256)
    net = SyncNet(syncnet_config_from_dict(record["config"]))
    load_state(net, load_file(str(path)), path)
    net.provenance = record.get("provenance", {})  # Steps and time already trained.
    return net.eval()


def resolve_syncnet(name_or_path: str | None, manifest: Path | None = None) -> SyncNet:
    """A SyncNet from a ``.safetensors`` path or a manifest name (kind "syncnet"); None = the
    manifest's ``default_syncnet``.

    Raises:
        WeightsError: no such checkpoint, or None and the manifest sets no default.
    """
    if name_or_path is None:
        m = load_manifest(manifest)
        name_or_path = m.default_syncnet
        if name_or_path is None:
            raise WeightsError(f"{m.path}: no SyncNet named and no default_syncnet set")
    path, entry = checkpoint_file(name_or_path, "syncnet", "SyncNet", manifest)
    return load_syncnet(path, expected_sha256=entry.sha256 if entry else None)
