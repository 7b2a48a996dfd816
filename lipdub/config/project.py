"""The project manifest, lipdub.toml: name, default preset and device, stages, actors.

```toml
[project]
name = "my-film"
preset = "broadcast"        # draft | broadcast | feature
device = "auto"             # auto | cpu | cuda | cuda:N
weights = "default"         # name in weights/manifest.toml, or a path

[stages]                    # which plugin serves each stage (see `lipdub plugins list`)
faces = "dlib-hog"
blender = "laplacian"

[stage_options.blender]     # that stage's own options (see docs/plugins.md)
levels = 5

[settings]                  # any other render setting (audio_fit, codec, batch_size, ...)
audio_fit = "pad-trim"

[actors.anna]
footage = ["footage/anna_interview.mov"]   # her own footage with her own voice
references = ["actors/anna/face.jpg"]     # still images of her face (optional)
```
Paths are relative to the folder that holds lipdub.toml.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lipdub.config.settings import check_layer, did_you_mean
from lipdub.config.stage_options import check_stage_options
from lipdub.errors import ConfigError
from lipdub.stages import STAGES

MANIFEST = "lipdub.toml"
CACHE_DIR = ".lipdub/cache"

_PROJECT_KEYS = ("name", "preset", "device", "weights")
_ACTOR_KEYS = ("footage", "references")
#: An actor's folder, relative to the project root: what `lipdub personalize` stores for them.
ACTOR_DIR = "actors/{name}"
#: The actor's ΔW/ΔP personalization file, relative to the project root.
PERSONAL_FILE = ACTOR_DIR + "/personal.safetensors"
#: Where a personalization that did not beat the general model is kept aside (never rendered).
REJECTED_FILE = ACTOR_DIR + "/personal.rejected.safetensors"
_TABLES = ("project", "stages", "stage_options", "settings", "actors")


@dataclass(frozen=True)
class ActorConfig:
    """One actor: their name, their own footage (for identity and personalization), stills."""

    name: str  # Key in [actors.NAME] and in shots' `actors:` lists.
    footage: tuple[Path, ...] = ()  # Clips of the actor speaking with their own voice.
    references: tuple[Path, ...] = ()  # Still images of the actor's face.

    @property
    def personal_dir(self) -> str:
        """Folder (relative to the project) where this actor's personalization is stored."""
        return ACTOR_DIR.format(name=self.name)


@dataclass(frozen=True)
class ProjectConfig:
    """A parsed lipdub.toml (or the built-in defaults when there is no project)."""

    root: Path  # Folder holding lipdub.toml (the current directory when there is none).
    name: str = "untitled"  # Project name.
    manifest: Path | None = None  # The lipdub.toml file, None when running without a project.
    layer: dict[str, Any] = field(default_factory=dict)  # Settings it sets (preset, stages...).
    actors: dict[str, ActorConfig] = field(default_factory=dict)  # By name.

    @property
    def cache_dir(self) -> Path:
        """Where shot analyses are cached."""
        return self.root / CACHE_DIR

    def actor(self, name: str, where: str) -> ActorConfig:
        """The actor called ``name``; an unknown name is an error naming ``where``."""
        if name not in self.actors:
            known = ", ".join(self.actors) or "none defined"
            raise ConfigError(
                f"{where}: unknown actor {name!r}{did_you_mean(name, list(self.actors))} "
                f"(actors in {self.manifest or MANIFEST}: {known}); add an [actors.{name}] table"
            )
        return self.actors[name]


def find_project(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` that holds a lipdub.toml."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / MANIFEST).is_file():
            return folder
    return None


def _line(text: str, table: str | None, key: str) -> int:
    """Best-effort line of ``key`` inside ``[table]`` (TOML parsers do not report lines)."""
    lines = text.splitlines()
    in_table = table is None
    for i, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("["):
            in_table = table is not None and stripped.strip("[] ") == table
            continue
        if in_table and re.match(rf"^{re.escape(key)}\s*=", stripped):
            return i
    headers = [line.strip().strip("[] ") for line in lines]
    for name in (f"{table}.{key}" if table else key, table):  # A sub-table's header, or its own.
        if name in headers:
            return headers.index(name) + 1
    return 0


def load_project(root: Path) -> ProjectConfig:
    """Parse ``root/lipdub.toml`` into a :class:`ProjectConfig`.

    Raises:
        ConfigError: syntax error, unknown table or key, wrong type, unknown stage choice
            format, or a missing footage/reference file; each with its line.
    """
    path = root / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file; run `lipdub project init`") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None

    def where(table: str | None, key: str) -> str:
        return f"{path}:{_line(text, table, key)}"

    for table in data:
        if table not in _TABLES:
            raise ConfigError(
                f"{where(None, table)}: unknown table [{table}]{did_you_mean(table, _TABLES)} "
                f"(known: {', '.join(_TABLES)})"
            )
    proj = _table(data, "project", path)
    layer: dict[str, Any] = {}
    for key, value in proj.items():
        if key not in _PROJECT_KEYS:
            raise ConfigError(
                f"{where('project', key)}: unknown key {key!r} in [project]"
                f"{did_you_mean(key, _PROJECT_KEYS)} (known: {', '.join(_PROJECT_KEYS)})"
            )
        if key != "name":
            layer.update(check_layer({key: value}, where("project", key)))
    if not isinstance(proj.get("name", ""), str):
        raise ConfigError(f"{where('project', 'name')}: name must be a string")
    layer.update(_stages_layer(_table(data, "stages", path), where))
    for key, value in _table(data, "settings", path).items():
        layer.update(check_layer({key: value}, where("settings", key)))
    blocks = check_stage_options(
        _table(data, "stage_options", path),
        lambda p: where(".".join(("stage_options", *p[:-1])), p[-1]),
    )
    for stage, block in blocks.items():  # Over any `stage_options` written in [settings].
        written = layer.setdefault("stage_options", {})
        written[stage] = {**(written.get(stage) or {}), **(block or {})}
    actors = {}
    for name, table in _table(data, "actors", path).items():
        actors[name] = _actor(name, table, root, lambda k, n=name: where(f"actors.{n}", k))
    return ProjectConfig(
        root=root, name=proj.get("name", root.name), manifest=path, layer=layer, actors=actors
    )


def _stages_layer(stages: dict[str, Any], where: Callable[[str, str], str]) -> dict[str, Any]:
    """The [stages] table's choices, checked: known stage names, a choice's name each (a
    sub-table of options there is pointed to [stage_options.STAGE])."""
    layer: dict[str, Any] = {}
    for key, value in stages.items():
        if key not in STAGES:
            raise ConfigError(
                f"{where('stages', key)}: unknown stage {key!r}{did_you_mean(key, list(STAGES))} "
                f"(stages: {', '.join(STAGES)})"
            )
        if isinstance(value, dict):
            raise ConfigError(
                f'{where("stages", key)}: [stages] picks each stage\'s choice ({key} = "NAME"); '
                f"its options go in [stage_options.{key}]"
            )
        layer.update(check_layer({key: value}, where("stages", key)))
    return layer


def _table(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    return table


def _actor(name: str, table: Any, root: Path, where: Any) -> ActorConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{where('')}: [actors.{name}] must be a table")
    lists: dict[str, tuple[Path, ...]] = {}
    for key, value in table.items():
        if key not in _ACTOR_KEYS:
            raise ConfigError(
                f"{where(key)}: unknown key {key!r} for actor {name!r}"
                f"{did_you_mean(key, _ACTOR_KEYS)} (known: {', '.join(_ACTOR_KEYS)})"
            )
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where(key)}: actors.{name}.{key} must be a list of paths")
        paths = tuple((root / v) for v in value)
        for p in paths:
            if not p.exists():
                raise ConfigError(f"{where(key)}: actor {name!r}: {key} file {p} does not exist")
        lists[key] = paths
    return ActorConfig(name=name, **lists)


def default_project(cwd: Path) -> ProjectConfig:
    """The project used when no lipdub.toml is found: built-in defaults, no actors."""
    return ProjectConfig(root=cwd.resolve())
