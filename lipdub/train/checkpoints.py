"""SyncNet and discriminator checkpoints, and training state for resume.

:mod:`lipdub.model.checkpoint` saves and verifies *generator* checkpoints; this module writes the
other kinds in the same format (``<name>.safetensors`` with ``format``/``kind``/``config_sha256``
metadata + ``<name>.json`` beside it with the config, provenance and the weights' SHA-256), and
loads SyncNet checkpoints by manifest name or path for training, offsets and evaluation.
Optimizer state for resuming is stored as tensors in a safetensors file too (never a pickle).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from lipdub.model.checkpoint import (
    FORMAT,
    config_path_for,
    sha256_file,
)
from lipdub.model.config import SyncNetConfig, config_digest

#: SyncNet for the generators (both resolutions): crops are resized to 96 and the 48×48 grey mouth
#: box goes in; Wav2Lip's expert sees a 48×96 colour lower half. See :mod:`lipdub.model.syncnet`.
SYNCNET_LITE = SyncNetConfig()


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
