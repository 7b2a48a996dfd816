"""Job fingerprints: what made an output, so that a re-run knows whether it is still right.

Every output lipdub writes gets a small JSON sidecar, ``<output folder>/.lipdub-job/<output
name>.json``, written only after the output is in place. It records the parts that decide what
the output looks and sounds like:

- ``lipdub``: the version that rendered it;
- ``source`` and ``range``: the source's identity and the shot's [in, out);
- ``settings.NAME``: every resolved setting (but the executor and its block in
  ``stage_options``: all executors write the same bytes);
- ``weights.generator`` / ``weights.driver`` / ``weights.syncnet``: the checkpoints the settings
  resolve to (their manifest SHA-256, config digest and audio scale; a bare ``.safetensors``
  path: the identity of it and its JSON). No model is loaded to find them. The exemplar's
  rule-based driver (``viseme-table``) has no file: ``weights.driver`` is then its name and
  the digest of its constants, so a change to the rule makes its outputs stale;
- ``actor:NAME``: the actor's footage and reference files as lipdub.toml lists them (names,
  not contents: they pick out which face is whose);
- ``actor:NAME.personal`` / ``actor:NAME.bank``: the actor's personalization file and exemplar
  bank (``actors/NAME/``), when ``personal`` is on;
- and per dub: ``audio``, ``mix``, ``stem:ACTOR`` (identities), ``offset``, ``gain_db``,
  ``output`` (the file's name: its folder is where the sidecar is, and may be mounted
  elsewhere on another farm node) and ``script`` (a digest of the dub's words and language,
  from shots.yaml or a ``NAME.txt`` sidecar; absent when it has none).

A file's identity is its size and content hash (blake2b, remembered by size and mtime in the
analysis cache's ``hashes.json``), so a copied or touched file is still the same file and an
edited one is not; path and mtime are recorded too, for people.

An output is *done* when its fingerprint matches the one its inputs give now, *stale* when
something differs (the names of what differs say why; "no fingerprint" for an output from a
lipdub before fingerprints), and *todo* when it does not exist.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lipdub import __version__
from lipdub.analysis.cache import file_hash
from lipdub.config.project import ACTOR_DIR, PERSONAL_FILE, ActorConfig
from lipdub.config.settings import Settings
from lipdub.config.shots import Dub, Shot
from lipdub.exemplar.bank import BANK_DIR
from lipdub.exemplar.target import rule_digest
from lipdub.manifest import (
    RANDOM_INIT,
    RULE_DRIVERS,
    ManifestEntry,
    config_path_for,
    load_manifest,
)
from lipdub.media.atomic import process_tag

FORMAT = "lipdub-job/1"  # Format tag of the sidecar.
SIDECAR_DIR = ".lipdub-job"  # Hidden folder beside the outputs that holds the sidecars.
#: Settings and stage blocks that do not change what is written (executors all write
#: byte-identical files).
IGNORED_SETTINGS = ("executor",)
IGNORED_STAGE_OPTIONS = ("executor",)
NO_FINGERPRINT = "no fingerprint"  # What "changed" says of an output without a sidecar.


@dataclass(frozen=True)
class ModelFile:
    """A checkpoint a render may load, found without loading it."""

    role: str  # "generator", "driver" or "syncnet".
    path: Path  # The .safetensors file.
    entry: ManifestEntry | None  # Its manifest entry; None for a bare path.
    setting: str  # The setting that named it ("weights", "stage_options.generator"); "" = a
    # default.


def exemplar_driver(settings: Settings) -> str | None:
    """The mouth driver a render with ``settings`` uses: the generator block's ``driver``, or
    the manifest's default; None when the generator is not exemplar or nothing is set."""
    if settings.stage("generator") != "exemplar":
        return None
    driver = settings.options("generator").get("driver")
    return str(driver) if driver else load_manifest().default_driver


def model_files(settings: Settings) -> list[ModelFile]:
    """The checkpoints a render with ``settings`` may load: the crop generator (``weights`` or
    the manifest's default; none for ``random-init``, nor for the exemplar generator unless its
    thin tracks fall back to stylesync: ``fallback``), the exemplar's driver checkpoint
    (:func:`exemplar_driver`, unless it is a rule-based one, which has no file) and, when QC
    measures with it (``qc`` and ``qc_syncnet``), the default SyncNet. A default the manifest
    lacks is left out; a name it lacks is an error.

    Raises:
        WeightsError: a named checkpoint that is not in the manifest, or a broken manifest.
    """
    manifest = load_manifest()
    found = []
    exemplar = settings.stage("generator") == "exemplar"
    crops = not exemplar or settings.fallback == "stylesync"  # A crop generator may run.
    if (
        crops
        and settings.weights != RANDOM_INIT
        and (settings.weights or manifest.default_generator)
    ):
        from lipdub.model.checkpoint import generator_file  # The model layer imports torch.

        path, entry = generator_file(settings.weights)
        found.append(ModelFile("generator", path, entry, "weights" if settings.weights else ""))
    name = exemplar_driver(settings)
    if name is not None and name not in RULE_DRIVERS:
        from lipdub.model.checkpoint import checkpoint_file  # Only a learned driver: torch.
        from lipdub.model.driver import KIND as DRIVER_KIND

        path, entry = checkpoint_file(name, DRIVER_KIND, "mouth driver")
        named = settings.options("generator").get("driver")
        found.append(ModelFile("driver", path, entry, "stage_options.generator" if named else ""))
    if settings.qc and settings.qc_syncnet and manifest.default_syncnet:
        entry = manifest.entries[manifest.default_syncnet]
        found.append(ModelFile("syncnet", entry.file, entry, ""))
    return found


@dataclass(frozen=True)
class Fingerprint:
    """What made one output: parts shared by the shot's dubs, and the dub's own."""

    dub: str  # The dub's name.
    shot_parts: dict[str, Any]  # Part name -> JSON value, shared by every dub of the shot.
    dub_parts: dict[str, Any]  # Part name -> JSON value, this dub's own.
    files: dict[str, dict[str, Any]]  # Part name -> {path, size, mtime_ns} of file parts.
    # A shot that names no actors dubs whoever the analysis finds: the actors its render found
    # (their personal files and banks are the ones that count); None: every part counts.
    found: tuple[str, ...] | None = None

    def only_found(self, found: tuple[str, ...] | None) -> Fingerprint:
        """This fingerprint with the personal files and banks of actors not in ``found`` left
        out (a change to an actor the shot does not show leaves it done); None: unchanged."""
        if found is None:
            return self
        keep = set(found)

        def counts(name: str) -> bool:
            for kind in (".personal", ".bank"):
                if name.startswith("actor:") and name.endswith(kind):
                    return name[len("actor:") : -len(kind)] in keep
            return True

        shot = {k: v for k, v in self.shot_parts.items() if counts(k)}
        files = {k: v for k, v in self.files.items() if counts(k.split("/")[0])}
        return dataclasses.replace(self, shot_parts=shot, files=files, found=tuple(sorted(keep)))

    def changed(self, old: Fingerprint | None) -> list[str]:
        """What differs from ``old`` (the sidecar): shot parts by name, dub parts as
        ``NAME:DUB``; ``["no fingerprint"]`` when there is none."""
        if old is None:
            return [NO_FINGERPRINT]
        out = _differ(self.shot_parts, old.shot_parts)
        out += [f"{k}:{self.dub}" for k in _differ(self.dub_parts, old.dub_parts)]
        return out

    def to_json(self, output: Path) -> str:
        """The sidecar's text."""
        record = {
            "format": FORMAT,
            "output": str(output),
            "dub": self.dub,
            "shot": self.shot_parts,
            "parts": self.dub_parts,
            "files": self.files,
            "found": None if self.found is None else list(self.found),
        }
        return json.dumps(record, indent=1, sort_keys=True) + "\n"


def _differ(new: dict[str, Any], old: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(new) | set(old) if new.get(k) != old.get(k))


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists, paths strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


class _Parts:
    """Collects parts and the files they identify."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.parts: dict[str, Any] = {}
        self.files: dict[str, dict[str, Any]] = {}

    def file(self, name: str, path: Path) -> None:
        """Part ``name`` is the identity of ``path``."""
        self.parts[name] = self.identity(path, name)

    def identity(self, path: Path, name: str) -> dict[str, Any]:
        """``path``'s size and content hash (its path and mtime go into ``files``)."""
        st = path.stat()
        self.files[name] = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        return {"size": st.st_size, "blake2b": file_hash(path, self.cache_dir)}


def shot_fingerprint_parts(
    shot: Shot, project_root: Path, cache_dir: Path, actors: Iterable[ActorConfig]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The parts every dub of ``shot`` shares, and the files they identify.

    ``actors``: the actors whose files may be used (the shot's, or every project actor when
    the shot names none).

    Raises:
        WeightsError: as :func:`model_files`.
    """
    p = _Parts(cache_dir)
    p.parts["lipdub"] = __version__
    p.file("source", shot.source)
    p.parts["range"] = [shot.start, shot.stop]
    if shot.dub_span is not None:  # A sub-shot plays its part of the dub from this span.
        p.parts["dub_span"] = list(shot.dub_span)
    for key, value in dataclasses.asdict(shot.settings).items():
        if key == "stage_options":
            value = {k: v for k, v in value.items() if k not in IGNORED_STAGE_OPTIONS}
        if key not in IGNORED_SETTINGS:
            p.parts[f"settings.{key}"] = _jsonable(value)
    for model in model_files(shot.settings):
        name = f"weights.{model.role}"
        if model.entry is not None:
            e = model.entry
            p.parts[name] = {
                "name": e.name,
                "sha256": e.sha256,
                "config_sha256": e.config_sha256,
                "audio_scale": e.audio_scale,
            }
        elif model.path.is_file():
            config = config_path_for(model.path)
            p.parts[name] = {
                "file": p.identity(model.path, name),
                "config": p.identity(config, f"{name}.config") if config.is_file() else None,
            }
        else:  # Validation refuses this before a render; a listing just says what it saw.
            p.parts[name] = {"missing": str(model.path)}
    driver = exemplar_driver(shot.settings)
    if driver in RULE_DRIVERS:
        p.parts["weights.driver"] = {"name": driver, "config_sha256": rule_digest(driver)}
    for actor_config in sorted(actors, key=lambda a: a.name):
        actor = actor_config.name
        p.parts[f"actor:{actor}"] = {
            "footage": [_relative(f, project_root) for f in actor_config.footage],
            "references": [_relative(f, project_root) for f in actor_config.references],
        }
        if shot.settings.personal:
            folder = project_root / ACTOR_DIR.format(name=actor)
            personal = project_root / PERSONAL_FILE.format(name=actor)
            if personal.is_file():
                p.file(f"actor:{actor}.personal", personal)
            bank = {}
            for part in sorted((folder / BANK_DIR).glob("**/part.json")):
                for f in sorted(x for x in part.parent.iterdir() if x.is_file()):
                    rel = str(f.relative_to(folder))
                    bank[rel] = p.identity(f, f"actor:{actor}.bank/{rel}")
            if bank:
                p.parts[f"actor:{actor}.bank"] = bank
    return p.parts, p.files


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def dub_fingerprint(
    dub: Dub, shot_parts: tuple[dict[str, Any], dict[str, dict[str, Any]]], cache_dir: Path
) -> Fingerprint:
    """The fingerprint of ``dub``'s output, given its shot's parts."""
    p = _Parts(cache_dir)
    if dub.audio is not None:
        p.file("audio", dub.audio)
    if dub.mix is not None:
        p.file("mix", dub.mix)
    for actor, path in sorted(dub.stems.items()):
        p.file(f"stem:{actor}", path)
    p.parts["offset"] = dub.offset_s
    p.parts["gain_db"] = dub.gain_db
    p.parts["output"] = dub.output.name
    scripts = {a: dub.script_for(a) for a in sorted({"", *dub.stems})}
    words = {a: (s.language, s.text) for a, s in scripts.items() if s is not None}
    if words:  # Only dubs with a script carry the key: others keep their old fingerprints.
        p.parts["script"] = hashlib.sha256(json.dumps(words, sort_keys=True).encode()).hexdigest()
    shared, shared_files = shot_parts
    return Fingerprint(dub.name, shared, p.parts, {**shared_files, **p.files})


def sidecar_path(output: Path) -> Path:
    """Where the fingerprint of ``output`` is kept."""
    return output.parent / SIDECAR_DIR / f"{output.name}.json"


def write_fingerprint(output: Path, fingerprint: Fingerprint) -> None:
    """Store ``fingerprint`` beside ``output`` (call only once ``output`` is in place)."""
    path = sidecar_path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{process_tag()}.tmp")  # Private to this process.
    tmp.write_text(fingerprint.to_json(output))
    os.replace(tmp, path)


def remove_fingerprint(output: Path) -> None:
    """Forget ``output``'s fingerprint (before it is rendered again)."""
    sidecar_path(output).unlink(missing_ok=True)


def read_fingerprint(output: Path) -> Fingerprint | None:
    """The stored fingerprint of ``output``; None when there is none (or it is unreadable, or
    of another format: the output then counts as stale)."""
    try:
        record = json.loads(sidecar_path(output).read_text())
        if record.get("format") != FORMAT:
            return None
        found = record.get("found")
        return Fingerprint(
            record["dub"],
            record["shot"],
            record["parts"],
            record["files"],
            None if found is None else tuple(found),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
