"""SyncNet and discriminator checkpoints, and training state for resume.

:mod:`lipdub.model.checkpoint` saves and verifies *generator* checkpoints; this module writes the
other kinds in the same format (``<name>.safetensors`` with ``format``/``kind``/``config_sha256``
metadata + ``<name>.json`` beside it with the config, provenance and the weights' SHA-256), and
loads SyncNet checkpoints by manifest name or path for training, offsets and evaluation.
Optimizer state for resuming is stored as tensors in a safetensors file too (never a pickle).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from lipdub.errors import WeightsError
from lipdub.model.checkpoint import (
    FORMAT,
    checkpoint_file,
    config_path_for,
    existing_sidecar,
    load_manifest,
    load_state,
    sha256_file,
)
from lipdub.model.config import MelConfig, SyncNetConfig, config_digest
from lipdub.model.syncnet import SyncNet

#: SyncNet for the generators (both resolutions): crops are resized to 96 and the 48×48 grey mouth
#: box goes in; Wav2Lip's expert sees a 48×96 colour lower half. See :mod:`lipdub.model.syncnet`.
SYNCNET_LITE = SyncNetConfig()


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


def save_module(
    module: torch.nn.Module,
    path: Path,
    kind: str,
    config: dict[str, Any],
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """Write a non-generator checkpoint (``kind`` = "syncnet" or "discriminator")."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = config_digest(config)
    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={"format": FORMAT, "kind": kind, "config_sha256": digest})
    tmp.replace(path)
    record = {
        "format": FORMAT,
        "kind": kind,
        "config": config,
        "config_sha256": digest,
        "audio": config.get("mel"),
        "provenance": provenance,
        "weights_sha256": sha256_file(path),
    }
    config_path_for(path).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def verified_record(
    path: Path, kind: str, what: str, expected_sha256: str | None = None
) -> dict[str, Any]:
    """The JSON record of a :func:`save_module` checkpoint, after checking that it is ``kind``,
    that the file's SHA-256 matches ``expected_sha256`` (the manifest's) and the JSON's, and that
    the config digest matches. ``what`` names the network in error messages.

    Raises:
        WeightsError: missing file or JSON, another kind, hash or config mismatch.
    """
    path = Path(path)
    cpath = existing_sidecar(path, f"{what} weights")
    record = json.loads(cpath.read_text())
    if record.get("kind") != kind:
        raise WeightsError(f"{path}: a {record.get('kind')!r} checkpoint, not {kind!r} ({what})")
    got = sha256_file(path)
    for want in (expected_sha256, record.get("weights_sha256")):
        if want is not None and want != got:
            raise WeightsError(f"{path}: sha256 mismatch ({got[:12]}… vs {want[:12]}…)")
    if config_digest(record["config"]) != record.get("config_sha256"):
        raise WeightsError(f"{path}: config digest mismatch in {cpath.name}")
    return record


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


def save_state(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write training state (flattened optimizer tensors etc.) atomically; meta as JSON strings."""
    tmp = Path(path).with_suffix(".tmp")
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
        str(tmp),
        metadata={k: json.dumps(v) for k, v in meta.items()},
    )
    tmp.replace(path)


def load_state_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Inverse of :func:`save_state`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = {k: json.loads(v) for k, v in (f.metadata() or {}).items()}
    return load_file(str(path)), meta


def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    """An Adam optimizer's per-parameter state as flat named tensors."""
    out = {}
    for i, state in opt.state_dict()["state"].items():
        for k, v in state.items():
            out[f"{prefix}.{i}.{k}"] = torch.as_tensor(v).reshape(-1) if k == "step" else v
    return out


def restore_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str):
    """Put back what :func:`optimizer_tensors` saved (param groups come from ``opt`` itself)."""
    sd = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        if not key.startswith(prefix + "."):
            continue
        _, i, k = key.rsplit(".", 2)
        state.setdefault(int(i), {})[k] = v.reshape(()) if k == "step" else v
    sd["state"] = state
    opt.load_state_dict(sd)
