"""Render settings: one typed record, resolved once from defaults, preset, project, shot and CLI.

Precedence, lowest first: built-in defaults < preset (``presets/NAME.yaml``) < project
(lipdub.toml ``[settings]`` and ``[stages]``) < shot (``settings:`` in shots.yaml) < command line.
Every layer is checked against the fields of :class:`Settings` so a misspelt key is an error with
its location, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lipdub.config.yamlfile import LineDict, load_yaml
from lipdub.errors import ConfigError
from lipdub.media.audio import FIT_POLICIES
from lipdub.media.write import CODECS
from lipdub.stages import STAGES


@dataclass(frozen=True)
class Settings:
    """Everything a render needs to know besides the shot itself."""

    preset: str = "draft"  # Name of the preset these settings started from.
    device: str = "auto"  # "auto", "cpu", "cuda" or "cuda:N".
    codec: str = "h264"  # Output video codec (see lipdub.media.write.CODECS).
    container: str = ".mov"  # Output suffix when a shot names no output path.
    weights: str | None = (
        None  # Checkpoint name in weights/manifest.toml or a path; None = default.
    )
    model: str = "full"  # Model config when no checkpoint says otherwise: "full" or "lite".
    batch_size: int = 16  # Frames per generator batch.
    # How far the dub moves the mouth from the one silence gives (lipdub.model.generator);
    # None = the checkpoint's own, from its manifest entry.
    audio_scale: float | None = None
    compile: bool = False  # torch.compile the generator (CUDA; slow first batch).
    audio_fit: str = "pad-trim"  # What to do when the dub's length differs from the shot's.
    conform_vfr: bool = False  # Accept variable-rate sources: frames put on a constant grid by
    # repeating or dropping them (counted in a warning).
    personal: bool = True  # Use an actor's personalization file when one exists.
    qc: bool = True  # Measure each output (mouth vs loudness, thumbnails) for the QC report.
    # Where the dub is silent, the actor's own closed mouth: the source where it is closed, else
    # the track's most closed frame (see lipdub.analysis.rest). No generated lips quiver in pauses.
    rest_on_silence: bool = True
    # Stage choices (see lipdub.stages.STAGES); "" means the stage's default.
    shots: str = ""
    faces: str = ""
    tracker: str = ""
    masks: str = ""
    generator: str = ""
    blender: str = ""
    executor: str = ""
    personalizer: str = ""
    # Free-form option blocks for stages, validated by the stage that reads them.
    analysis: Mapping[str, Any] = field(default_factory=dict)
    blend: Mapping[str, Any] = field(default_factory=dict)
    exemplar: Mapping[str, Any] = field(default_factory=dict)  # lipdub.exemplar.track options.
    # The executor's options (ray: address, num_gpus, num_cpus); one run has one executor.
    executor_options: Mapping[str, Any] = field(default_factory=dict)

    def stage(self, name: str) -> str:
        """The choice for stage ``name`` (its default when not set)."""
        return getattr(self, name) or STAGES[name].default


SETTING_NAMES = tuple(f.name for f in dataclasses.fields(Settings))
#: Settings that are option blocks for a stage (merged key by key across layers).
OPTION_BLOCKS = ("analysis", "blend", "exemplar", "executor_options")
_TYPES: dict[str, tuple[type, ...]] = {
    f.name: (
        (str, type(None))
        if f.name == "weights"
        else (int, float, type(None))
        if f.name == "audio_scale"
        else (dict,)
        if f.name in OPTION_BLOCKS
        else (bool,)
        if f.type == "bool"
        else (int,)
        if f.type == "int"
        else (str,)
    )
    for f in dataclasses.fields(Settings)
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "codec": tuple(CODECS),
    "container": (".mov", ".mp4", ".mkv"),
    "model": ("full", "lite"),
    "audio_fit": FIT_POLICIES,
}


def did_you_mean(word: str, options: list[str] | tuple[str, ...]) -> str:
    """A ``; did you mean 'x'?`` suffix for an unknown word (empty when nothing is close)."""
    close = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_layer(layer: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate one layer of settings; ``where`` prefixes error messages (file:line)."""
    out: dict[str, Any] = {}
    for key, value in layer.items():
        loc = f"{where}:{layer.line_of(key)}" if isinstance(layer, LineDict) else where
        if key not in SETTING_NAMES or (key == "preset" and not isinstance(value, str)):
            raise ConfigError(
                f"{loc}: unknown setting {key!r}{did_you_mean(str(key), SETTING_NAMES)} "
                f"(known: {', '.join(SETTING_NAMES)})"
            )
        types = _TYPES[key]
        if not isinstance(value, types) or (bool in types) != isinstance(value, bool):
            want = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ConfigError(f"{loc}: setting {key!r} must be {want}, got {value!r}")
        if key in _CHOICES and value not in _CHOICES[key]:
            raise ConfigError(
                f"{loc}: {key} = {value!r} is not one of {', '.join(_CHOICES[key])}"
                f"{did_you_mean(str(value), _CHOICES[key])}"
            )
        if key == "device":
            check_device_name(value, loc)
        if key == "batch_size" and value < 1:
            raise ConfigError(f"{loc}: batch_size must be at least 1, got {value}")
        if key == "audio_scale" and value is not None and not value > 0:
            raise ConfigError(f"{loc}: audio_scale must be a number > 0, got {value}")
        out[key] = dict(value) if isinstance(value, dict) else value
    return out


def check_device_name(value: str, where: str) -> None:
    """Refuse anything but auto, cpu, cuda and cuda:N."""
    ok = value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit())
    if not ok:
        raise ConfigError(f"{where}: device must be auto, cpu, cuda or cuda:N, got {value!r}")


def preset_names() -> list[str]:
    """Names of the bundled presets."""
    files = resources.files("lipdub.presets").iterdir()
    return sorted(Path(f.name).stem for f in files if f.name.endswith(".yaml"))


def load_preset(name: str, where: str = "preset") -> dict[str, Any]:
    """The settings layer of preset ``name``."""
    names = preset_names()
    if name not in names:
        raise ConfigError(
            f"{where}: unknown preset {name!r}{did_you_mean(name, names)} "
            f"(available: {', '.join(names)})"
        )
    path = Path(str(resources.files("lipdub.presets") / f"{name}.yaml"))
    data = load_yaml(path) or LineDict()
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a preset must be a mapping of settings")
    data.pop("description", None)
    return check_layer(data, str(path))


def resolve(*layers: Mapping[str, Any], preset: str | None = None) -> Settings:
    """Merge checked layers (lowest precedence first) over the named preset and the defaults.

    The preset is the one named by the highest layer that names one, else ``preset``, else the
    default's. Option blocks (``analysis``, ``blend``, ``exemplar``, ``executor_options``) merge
    key by key.
    """
    chosen = preset or Settings.preset
    for layer in layers:
        chosen = layer.get("preset", chosen)
    merged: dict[str, Any] = {}
    for layer in (load_preset(chosen), *layers):
        for key, value in layer.items():
            if key in OPTION_BLOCKS:
                merged[key] = {**merged.get(key, {}), **value}
            else:
                merged[key] = value
    merged["preset"] = chosen
    return Settings(**merged)
