"""Checkpoints: safetensors weights + a JSON config beside them, listed in weights/manifest.toml.

``<name>.safetensors`` holds the state dict (tensors only: nothing is unpickled, ever) and
metadata ``{"format", "kind", "config_sha256"}``; ``<name>.json`` holds the architecture config,
its digest, the audio parameters, the provenance and the weights' SHA-256. Loading refuses, with a
one-line :class:`~lipdub.errors.WeightsError`:

- a missing file (naming the path tried);
- a weights file whose SHA-256 differs from the manifest's or the JSON's (tampered / corrupt);
- a JSON config whose digest differs from the one sealed into the safetensors metadata, from the
  manifest's, or from the config the caller expects (config mismatch);
- tensors that do not fit the architecture the config describes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from lipdub.errors import ConfigError, WeightsError
from lipdub.manifest import (  # noqa: F401  (re-exported: the model layer's callers use them)
    MANIFEST_PATH,
    RANDOM_INIT,
    Manifest,
    ManifestEntry,
    config_digest,
    config_path_for,
    existing_sidecar,
    load_manifest,
    sha256_file,
    verified_record,
)
from lipdub.model.config import GeneratorConfig
from lipdub.model.generator import StyleSyncGenerator

FORMAT = "lipdub-checkpoint/1"  # Format tag in the JSON and the safetensors metadata.


def save_checkpoint(
    model: StyleSyncGenerator, path: Path, provenance: dict[str, Any]
) -> dict[str, Any]:
    """Write ``path`` (.safetensors) and its JSON config; return the JSON record.

    Arguments:
        model: the generator to save (its ``cfg`` goes into the config).
        path: destination ``.safetensors`` file; the ``.json`` goes beside it.
        provenance: free-form record of data, code commit, date, licence.
    """
    path = Path(path)
    cfg = model.cfg
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"format": FORMAT, "kind": "generator", "config_sha256": cfg.digest()}
    save_file(tensors, str(path), metadata=meta)
    record = {
        "format": FORMAT,
        "kind": "generator",
        "architecture": "stylesync",
        "resolution": cfg.resolution,
        "config": cfg.to_dict(),
        "config_sha256": cfg.digest(),
        "audio": cfg.to_dict()["mel"],
        "provenance": provenance,
        "weights_sha256": sha256_file(path),
    }
    config_path_for(path).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def _check_sha(path: Path, got: str, want: str | None, where: str) -> None:
    if want is not None and got != want:
        raise WeightsError(
            f"{path}: sha256 mismatch ({got[:12]}… vs {want[:12]}… in {where}); "
            "the file was changed or corrupted"
        )


def load_checkpoint(
    path: Path,
    expected_sha256: str | None = None,
    expected_config: GeneratorConfig | None = None,
    expected_config_sha256: str | None = None,
) -> tuple[StyleSyncGenerator, dict[str, Any]]:
    """Load a generator checkpoint after verifying its hash and config.

    Arguments:
        path: the ``.safetensors`` file.
        expected_sha256: the weights' SHA-256 from the manifest (None = trust the JSON's).
        expected_config: refuse the checkpoint unless its config equals this one.
        expected_config_sha256: refuse unless the config digest equals this (manifest pin).

    Returns:
        The model (eval mode, on CPU) and the JSON record.

    Raises:
        WeightsError: missing file, hash mismatch, config mismatch or unloadable tensors.
    """
    path = Path(path)
    cpath = existing_sidecar(path, "generator weights")
    try:
        record = json.loads(cpath.read_text())
        cfg = GeneratorConfig.from_dict(record["config"])
    except (json.JSONDecodeError, KeyError, TypeError, ConfigError) as e:
        raise WeightsError(f"{cpath}: unreadable checkpoint config ({e})") from None
    got = sha256_file(path)
    _check_sha(path, got, expected_sha256, "the manifest")
    _check_sha(path, got, record.get("weights_sha256"), cpath.name)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({e})") from None
    digest = cfg.digest()
    pins = {
        "the safetensors metadata": meta.get("config_sha256"),
        cpath.name: record.get("config_sha256"),
        "the manifest": expected_config_sha256,
        "the requested config": None if expected_config is None else expected_config.digest(),
    }
    for where, want in pins.items():
        if want is not None and want != digest:
            raise WeightsError(
                f"{path}: config mismatch: {cpath.name} describes {cfg.name!r} "
                f"({digest[:12]}…) but {where} expects {want[:12]}…"
            )
    model = StyleSyncGenerator(cfg)
    load_state(model, state, path)
    return model.eval(), record


def checkpoint_file(
    name_or_path: str, kind: str, what: str, manifest: Path | None = None
) -> tuple[Path, ManifestEntry | None]:
    """A ``.safetensors`` path as given (no manifest pins), or the file of a manifest name of
    ``kind`` with its entry (whose SHA-256 and config digest the caller checks).

    Raises:
        WeightsError: the name is not a listed checkpoint of that kind (``what`` names it).
    """
    if name_or_path.endswith(".safetensors") or "/" in name_or_path:
        return Path(name_or_path).expanduser(), None
    m = load_manifest(manifest)
    entry = m.entries.get(name_or_path)
    if entry is None or entry.kind != kind:
        raise WeightsError(f"{m.path}: no {what} checkpoint named {name_or_path!r}")
    return entry.file, entry


def generator_file(
    weights: str | None,
    manifest: Path | None = None,
    no_default_hint: str = "name a .safetensors file",
) -> tuple[Path, ManifestEntry | None]:
    """The file a generator name means: a ``.safetensors`` path, a manifest name, or (None) the
    manifest's default; with the manifest entry, None for a bare path.

    The one place a generator is looked up by name, so the renderer, ``lipdub eval`` and
    ``train generator --init`` agree on what a name means, on the pins checked and on the
    checkpoint's own settings (:func:`audio_scale_for`).

    Raises:
        WeightsError: no such checkpoint or default, or not a generator.
    """
    if not weights:
        m = load_manifest(manifest)
        weights = m.default_generator
        if weights is None:
            raise WeightsError(
                f"{m.path}: no generator checkpoint listed (no default_generator); train one or "
                f"{no_default_hint}"
            )
    return checkpoint_file(str(weights), "generator", "generator", manifest)


def resolve_generator(
    weights: str | None,
    manifest: Path | None = None,
    no_default_hint: str = "name a .safetensors file",
) -> tuple[StyleSyncGenerator, str]:
    """A generator loaded from what :func:`generator_file` finds, pins checked.

    Returns:
        The model (eval mode, CPU) and a label for logs and reports (name and file).

    Raises:
        WeightsError: no such checkpoint or default, not a generator, or a failed check.
    """
    path, entry = generator_file(weights, manifest, no_default_hint)
    if entry is None:
        return load_checkpoint(path)[0], str(path)
    model, _ = load_checkpoint(
        path, expected_sha256=entry.sha256, expected_config_sha256=entry.config_sha256
    )
    return model, f"{entry.name} ({entry.file})"


def audio_scale_for(weights: str | None, manifest: Path | None = None) -> float:
    """The audio scale a generator runs at by default: its manifest entry's, 1 for a bare file.

    Raises:
        WeightsError: as :func:`generator_file`.
    """
    _, entry = generator_file(weights, manifest)
    return float(entry.audio_scale) if entry is not None else 1.0


def load_state(
    model: torch.nn.Module,
    state: dict[str, torch.Tensor],
    path: Path,
    may_lack: str | None = None,
) -> None:
    """``model.load_state_dict(state, strict=True)`` with one-line WeightsErrors.

    ``may_lack``: tensors whose names contain it may be absent from ``state`` and keep the
    model's own values (a gate-less generator starting a gated one, where they are zero).
    """
    own = model.state_dict()
    missing = sorted(k for k in set(own) - set(state) if may_lack is None or may_lack not in k)
    extra = sorted(set(state) - set(own))
    if missing or extra:
        raise WeightsError(
            f"{path}: tensors do not fit the architecture (missing {missing[:3]}, "
            f"unexpected {extra[:3]})"
        )
    for k, v in state.items():
        if v.shape != own[k].shape:
            raise WeightsError(
                f"{path}: tensor {k} has shape {list(v.shape)}, the architecture "
                f"needs {list(own[k].shape)}"
            )
    model.load_state_dict(state, strict=may_lack is None)
