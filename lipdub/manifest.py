"""The weights manifest (weights/manifest.toml) and the check every weights file passes at load.

Torch-free, so that every layer may read a bundled file: the analysis its face landmark model,
the model layer its checkpoints (:mod:`lipdub.model.checkpoint` builds on this). A listed file is
loaded only after :func:`verified_record` has compared its SHA-256 with the manifest's and with
the JSON record beside it, so a tampered or corrupt file is refused with a one-line
:class:`~lipdub.errors.WeightsError`.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lipdub.errors import WeightsError

MANIFEST_PATH = Path(__file__).resolve().parents[1] / "weights" / "manifest.toml"
#: The rule-based mouth driver of the exemplar generator (lipdub.exemplar.target): it has no
#: weights file, so ``default_driver`` may name it without a checkpoint entry.
VISEME_TABLE = "viseme-table"
#: Drivers that are code, not checkpoints.
RULE_DRIVERS = (VISEME_TABLE,)
#: Special weights name: the generator untrained, from a fixed seed (no file).
RANDOM_INIT = "random-init"


def config_digest(data: dict[str, Any]) -> str:
    """SHA-256 hex digest of ``data`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ManifestEntry:
    """One named checkpoint in weights/manifest.toml."""

    name: str  # Name used by configs and the CLI, e.g. "stylesync-256".
    file: Path  # The .safetensors file (resolved against the manifest's folder).
    sha256: str  # SHA-256 of the .safetensors file.
    config: Path  # The JSON config beside it.
    provenance: str  # Where the weights came from (data, code commit, date).
    licence: str  # Licence the weights are distributed under.
    # "generator", "syncnet", "discriminator", "mouth-landmarks", "mouth-driver" or
    # "face-landmarker" / "face-detector" (.tflite models the analysis runs; see
    # lipdub.analysis.mesh and lipdub.analysis.blazeface).
    kind: str = "generator"
    config_sha256: str | None = None  # Digest of the architecture config, if pinned.
    # Generators: the audio scale s (StyleSyncGenerator.encode) the renderer uses by default,
    # chosen for this checkpoint on validation speakers; 1 = the network as trained.
    audio_scale: float = 1.0


@dataclass(frozen=True)
class Manifest:
    """The parsed manifest: named entries and the default generator, SyncNet and mouth driver."""

    path: Path  # The manifest file.
    entries: dict[str, ManifestEntry]  # By name.
    default_generator: str | None  # Name used when no checkpoint is named.
    default_syncnet: str | None = None  # SyncNet for QC's LSE-C / AV offset and L_sync.
    # Audio → mouth-shape driver of the exemplar generator: a mouth-driver checkpoint, or one
    # of RULE_DRIVERS (no file).
    default_driver: str | None = None


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_manifest(path: str | Path | None = None) -> Manifest:
    """Parse weights/manifest.toml (or another manifest).

    Raises:
        WeightsError: the file is missing or malformed.
    """
    path = Path(path) if path is not None else MANIFEST_PATH
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"{path}: weights manifest not found") from None
    except tomllib.TOMLDecodeError as e:
        raise WeightsError(f"{path}: invalid TOML: {e}") from None
    entries = {}
    for i, raw in enumerate(data.get("checkpoint", [])):
        try:
            entry = ManifestEntry(
                name=raw["name"],
                file=path.parent / raw["file"],
                sha256=raw["sha256"],
                config=path.parent / raw["config"],
                provenance=raw["provenance"],
                licence=raw["licence"],
                kind=raw.get("kind", "generator"),
                config_sha256=raw.get("config_sha256"),
                audio_scale=raw.get("audio_scale", 1.0),
            )
        except KeyError as e:
            raise WeightsError(f"{path}: checkpoint #{i + 1} lacks key {e.args[0]!r}") from None
        scale = entry.audio_scale
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
            raise WeightsError(
                f"{path}: checkpoint {entry.name!r}: audio_scale must be a number > 0, "
                f"got {scale!r}"
            )
        if entry.name in entries:
            raise WeightsError(f"{path}: checkpoint name {entry.name!r} listed twice")
        entries[entry.name] = entry
    defaults = {}
    for key, kind in (
        ("default_generator", "generator"),
        ("default_syncnet", "syncnet"),
        ("default_driver", "mouth-driver"),
    ):
        name = data.get(key) or None
        rule = key == "default_driver" and name in RULE_DRIVERS  # Code, not a checkpoint.
        if name is not None and not rule and (name not in entries or entries[name].kind != kind):
            raise WeightsError(f"{path}: {key} {name!r} is not a listed {kind} checkpoint")
        defaults[key] = name
    return Manifest(path=path, entries=entries, **defaults)


def config_path_for(weights: Path) -> Path:
    """The JSON config that belongs beside a .safetensors file."""
    return weights.with_suffix(".json")


def existing_sidecar(path: Path, what: str, sidecar: str = "config") -> Path:
    """The JSON beside a checkpoint file, after checking that both exist.

    Raises:
        WeightsError: "<what> not found: <path>", or the JSON is missing beside it.
    """
    path = Path(path)
    cpath = config_path_for(path)
    if not path.is_file():
        raise WeightsError(f"{what} not found: {path}")
    if not cpath.is_file():
        raise WeightsError(f"{path}: its {sidecar} {cpath.name} is missing beside it")
    return cpath


def verified_record(
    path: Path,
    kind: str,
    what: str,
    expected_sha256: str | None = None,
    *,
    config_sha256: str | None = None,
    sidecar: str = "config",
) -> dict[str, Any]:
    """The JSON record of a checkpoint, after checking that it is ``kind``, that the file's
    SHA-256 matches ``expected_sha256`` (the manifest's) and the JSON's, and that the config
    matches. ``what`` names the file in error messages. Every kind of weights file lipdub reads
    goes through here.

    Arguments:
        kind: the record's ``kind`` (a :func:`save_module` checkpoint), or its ``format`` for a
            file that names one instead (an actor's personalization file).
        config_sha256: for a file made for another network (a personalization file: the
            generator's), the digest its record must name; None: the record's own ``config``
            must hash to its ``config_sha256``.
        sidecar: what the JSON is called in messages ("config", "record").

    Raises:
        WeightsError: missing file or JSON, another kind, hash or config mismatch.
    """
    path = Path(path)
    cpath = existing_sidecar(path, what if sidecar != "config" else f"{what} weights", sidecar)
    record = json.loads(cpath.read_text())
    got_kind = record.get("kind", record.get("format"))
    if got_kind != kind:
        raise WeightsError(f"{path}: a {got_kind!r} checkpoint, not {kind!r} ({what})")
    got = sha256_file(path)
    for want in (expected_sha256, record.get("weights_sha256")):
        if want is not None and want != got:
            raise WeightsError(f"{path}: sha256 mismatch ({got[:12]}… vs {want[:12]}…)")
    if config_sha256 is not None:
        have = str(record.get("config_sha256"))
        if have != config_sha256:
            raise WeightsError(
                f"{path}: made for another generator config ({have[:12]}…, this generator's "
                f"is {config_sha256[:12]}…)"
            )
    elif config_digest(record["config"]) != record.get("config_sha256"):
        raise WeightsError(f"{path}: config digest mismatch in {cpath.name}")
    return record
