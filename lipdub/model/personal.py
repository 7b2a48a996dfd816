"""Per-actor personalization files: ΔW's MLP and the parameter offsets ΔP (StyleLipSync §3.3).

Personalization learns ΔW = MLP_Δw(f_f) and lets generator parameters move by ΔP, with E_a and
E_face frozen (loss L_p = L_g + λ_p(Σ‖ΔW‖² + Σ‖ΔP‖²)). The result is stored as a small
safetensors file (never a copy of the model): tensors ``delta_w.<name>`` for the MLP and
``delta_p.<parameter name>`` for each offset, with a JSON beside it naming the actor, the base
config digest, a digest of the general weights it was made from, and the file's SHA-256.
Applying it to a different architecture, or to other general weights (a newer default
checkpoint: ΔP are offsets from the old one's parameters), is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lipdub.errors import WeightsError
from lipdub.model.checkpoint import config_path_for, sha256_file, verified_record
from lipdub.model.generator import StyleSyncGenerator

log = logging.getLogger(__name__)

FORMAT = "lipdub-personal/1"  # Format tag in the JSON and the safetensors metadata.


def base_digest(state: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over a general model's tensors (ΔW's MLP left out), as float32 in key order.

    Identifies the weights an actor file was fitted to, whatever file or dtype they came from.
    """
    h = hashlib.sha256()
    for key in sorted(k for k in state if not k.startswith("delta_w.")):
        h.update(key.encode())
        h.update(state[key].detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()


def save_personal(
    model: StyleSyncGenerator,
    base_state: dict[str, torch.Tensor],
    path: Path,
    actor: str,
    provenance: dict[str, Any] | None = None,
) -> None:
    """Write ``model``'s ΔW MLP and its nonzero parameter offsets from ``base_state``.

    Arguments:
        model: the fine-tuned generator.
        base_state: the general model's state dict it was fine-tuned from.
        path: destination ``.safetensors``; the ``.json`` goes beside it.
        actor: actor name.
        provenance: free-form record (footage, steps, date).
    """
    if model.delta_w is None:
        raise ValueError("model has no ΔW MLP to save")
    tensors = {
        f"delta_w.{k}": v.detach().cpu().contiguous() for k, v in model.delta_w.state_dict().items()
    }
    for name, p in model.named_parameters():
        if name.startswith("delta_w."):
            continue
        delta = p.detach().cpu() - base_state[name].cpu()
        if torch.count_nonzero(delta):
            tensors[f"delta_p.{name}"] = delta.contiguous()
    digest = model.cfg.digest()
    save_file(tensors, str(path), metadata={"format": FORMAT, "config_sha256": digest})
    record = {
        "format": FORMAT,
        "actor": actor,
        "config_sha256": digest,
        "base_sha256": base_digest(base_state),
        "provenance": provenance or {},
        "weights_sha256": sha256_file(Path(path)),
    }
    config_path_for(Path(path)).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def apply_personal(model: StyleSyncGenerator, path: Path) -> dict[str, Any]:
    """Load an actor's ΔW MLP and add its ΔP to ``model`` in place; return the JSON record.

    Raises:
        WeightsError: missing file, hash or architecture mismatch.
    """
    path = Path(path)
    record = verified_record(
        path,
        FORMAT,
        "personalization file",
        config_sha256=model.cfg.digest(),
        sidecar="record",
    )
    if model.delta_w is None:
        raise WeightsError(f"{path}: the generator was built without ΔW")
    base = record.get("base_sha256")
    if base is None:
        log.warning("%s: no record of the general weights it was made from", path)
    elif base != base_digest(model.state_dict()):
        raise WeightsError(
            f"{path}: made from other general weights than the generator's (was the default "
            f"checkpoint updated?); run `lipdub personalize --actor {record.get('actor', 'NAME')}` "
            f"again"
        )
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({e})") from None
    params = dict(model.named_parameters())
    dw = {k.removeprefix("delta_w."): v for k, v in tensors.items() if k.startswith("delta_w.")}
    try:
        model.delta_w.load_state_dict(dw, strict=True)
    except RuntimeError:
        raise WeightsError(f"{path}: ΔW tensors do not fit this generator") from None
    with torch.no_grad():
        for key, delta in tensors.items():
            if not key.startswith("delta_p."):
                continue
            name = key.removeprefix("delta_p.")
            if name not in params or params[name].shape != delta.shape:
                raise WeightsError(f"{path}: ΔP {name} does not fit this generator")
            params[name].add_(delta.to(params[name].device, params[name].dtype))
    return record
