"""Render settings: one typed record, resolved once from defaults, preset, project, shot and CLI.

Precedence, lowest first: built-in defaults < preset (``presets/NAME.yaml``) < project
(lipdub.toml ``[settings]``, ``[stages]`` and ``[stage_options.STAGE]``) < shots.yaml
``defaults:`` < shot (``settings:``) < command line. Every layer is checked against the fields of
:class:`Settings` so a misspelt key is an error with its location, never silently ignored. Each
stage's options block merges key by key (see :mod:`lipdub.config.stage_options`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lipdub.analysis.settings import AnalysisSettings
from lipdub.config.stage_options import (
    LEGACY_BLOCKS,
    SHARED_SETTINGS,
    Where,
    check_analysis,
    check_stage_options,
    lay_legacy,
    warn_legacy,
)
from lipdub.config.yamlfile import LineDict, load_yaml
from lipdub.errors import ConfigError, did_you_mean
from lipdub.media.audio import FIT_POLICIES
from lipdub.media.write import CODECS
from lipdub.stages import STAGES

#: Choices of the ``fallback`` setting: the source's own frames, or the stylesync generator.
FALLBACKS = ("source", "stylesync")


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
    # QC also measures LSE-C / LSE-D with the manifest's SyncNet (research-only weights: off by
    # default; QC's lip sync and A/V offset come from the dub's visemes either way).
    qc_syncnet: bool = False
    # Where the dub is silent, the actor's own closed mouth: the source where it is closed, else
    # the track's most closed frame (see lipdub.analysis.rest). No generated lips quiver in pauses.
    rest_on_silence: bool = True
    precision: str = "auto"  # Generator arithmetic: "auto" (bf16 on CUDA), "fp32" or "bf16".
    # What a track gets whose exemplar bank is too thin for the dub: "source" (the source's own
    # frames, mouth unchanged, reported) or "stylesync" (the research-only lite-v4 paints it).
    fallback: str = "source"
    # Feather of the blend mask, as a fraction of the crop's size in frame pixels.
    feather_fraction: float = 0.03
    # Stage choices (see lipdub.stages.STAGES); "" means the stage's default.
    shots: str = ""
    faces: str = ""
    landmarker: str = ""
    tracker: str = ""
    masks: str = ""
    generator: str = ""
    blender: str = ""
    executor: str = ""
    personalizer: str = ""
    # The analysis run's own knobs, whichever plugins serve its stages (detection cadence,
    # identity, crop size: lipdub.analysis.settings.RUN_FIELDS).
    analysis: Mapping[str, Any] = field(default_factory=dict)
    # Each stage's own options by stage name, for the choice picked above (see
    # lipdub.config.stage_options): {"blender": {"levels": 5}}.
    stage_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def stage(self, name: str) -> str:
        """The choice for stage ``name`` (its default when not set)."""
        return getattr(self, name) or STAGES[name].default

    def options(self, stage: str) -> dict[str, Any]:
        """Stage ``stage``'s own options block (empty when none is set)."""
        return dict(self.stage_options.get(stage) or {})

    def analysis_settings(self) -> AnalysisSettings:
        """The analysis record: the run's own knobs (``analysis``) and the analysis stages'
        blocks (their fields of the record, e.g. the tracker's ``max_gap``), so the cache key
        and the built-in stages that stand in for missing ones see every one of them."""
        blocks = [dict(self.analysis), *(self.options(stage) for stage in ANALYSIS_STAGES)]
        return AnalysisSettings.from_options({k: v for b in blocks for k, v in b.items()})

    def shared(self, names: Iterable[str]) -> dict[str, Any]:
        """The top-level settings among ``names`` that every stage may take (see
        :data:`~lipdub.config.stage_options.SHARED_SETTINGS`): how the generator gets its device,
        weights and batch size; ``names`` are the options a choice declares."""
        return {n: getattr(self, n) for n in SHARED_SETTINGS if n in names}


#: The stages the analysis of a shot runs (their blocks feed :meth:`Settings.analysis_settings`).
ANALYSIS_STAGES = ("shots", "faces", "landmarker", "tracker", "masks")
SETTING_NAMES = tuple(f.name for f in dataclasses.fields(Settings))
#: Settings that are mappings, merged key by key across layers (deprecated blocks included).
BLOCKS = ("analysis", "stage_options", *LEGACY_BLOCKS)
#: Every key a settings layer may hold: the settings and the deprecated blocks.
LAYER_KEYS = (*SETTING_NAMES, *LEGACY_BLOCKS)
_TYPES: Mapping[str, tuple[type[Any], ...]] = {  # Any: a checked value stays Any
    f.name: (
        (str, type(None))
        if f.name == "weights"
        else (int, float, type(None))
        if f.name == "audio_scale"
        else (dict,)
        if f.name in BLOCKS
        else (bool,)
        if f.type == "bool"
        else (int,)
        if f.type == "int"
        else (int, float)
        if f.type == "float"
        else (str,)
    )
    for f in dataclasses.fields(Settings)
} | {key: (dict,) for key in LEGACY_BLOCKS}
_CHOICES: dict[str, tuple[str, ...]] = {
    "codec": tuple(CODECS),
    "container": (".mov", ".mp4", ".mkv"),
    "model": ("full", "lite"),
    "audio_fit": FIT_POLICIES,
    "precision": ("auto", "fp32", "bf16"),
    "fallback": FALLBACKS,
}


def check_layer(layer: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate one layer of settings; ``where`` prefixes error messages (file:line)."""
    out: dict[str, Any] = {}
    for key, value in layer.items():
        loc = f"{where}:{layer.line_of(key)}" if isinstance(layer, LineDict) else where
        if key not in LAYER_KEYS or (key == "preset" and not isinstance(value, str)):
            raise ConfigError(
                f"{loc}: unknown setting {key!r}{did_you_mean(str(key), LAYER_KEYS)} "
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
        if key == "feather_fraction" and not 0 <= value < 0.5:
            raise ConfigError(f"{loc}: feather_fraction must be in [0, 0.5), got {value}")
        out[key] = (
            _check_block(key, value, _nested_where(value, where, loc)) if key in BLOCKS else value
        )
    return out


def _check_block(key: str, value: Mapping[str, Any], where: Where) -> dict[str, Any]:
    """Check a mapping setting: the stage blocks, the analysis run's, a deprecated one."""
    if key == "stage_options":
        return check_stage_options(value, where)
    if key == "analysis":
        return check_analysis(value, where)
    warn_legacy(key, where(()))
    if key == "blend" and "feather_fraction" in value:  # Now a setting of its own: check it so.
        check_layer({"feather_fraction": value["feather_fraction"]}, where(("feather_fraction",)))
    return dict(value)


def _nested_where(value: Any, file: str, loc: str) -> Where:
    """Where a key inside the mapping ``value`` (set at ``loc`` of ``file``) is: its own line
    when the mapping came from YAML, else ``loc``."""

    def where(path: tuple[str, ...]) -> str:
        node, line = value, None
        for key in path:
            if not isinstance(node, LineDict):
                break
            line, node = node.line_of(key), node.get(key)
        return loc if line is None else f"{file}:{line}"

    return where


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
    default's. Mappings merge key by key: ``analysis``, each stage's block in ``stage_options``,
    and the deprecated blocks, which are then laid under the new ones
    (:func:`~lipdub.config.stage_options.lay_legacy`).
    """
    chosen = preset or Settings.preset
    for layer in layers:
        chosen = layer.get("preset", chosen)
    merged: dict[str, Any] = {}
    options: dict[str, dict[str, Any]] = {}
    legacy: dict[str, dict[str, Any]] = {}
    for layer in (load_preset(chosen), *layers):
        for key, value in layer.items():
            if key == "stage_options":  # A None block drops what lower layers set.
                for stage, block in value.items():
                    options[stage] = {} if block is None else {**options.get(stage, {}), **block}
            elif key in BLOCKS:
                into = legacy if key in LEGACY_BLOCKS else merged
                into[key] = {**into.get(key, {}), **value}
            else:
                merged[key] = value
    lay_legacy(merged, options, legacy)
    merged["preset"] = chosen
    return Settings(**merged, stage_options=options)
