"""Each stage's options block, and the deprecated blocks that map onto it.

A stage (``blender``, ``generator``, ``executor``...) gets its options one way: its block in
``stage_options``, keyed by stage name, merged key by key across the layers (preset < project <
shot < command line) like every setting::

    [stages]                      # lipdub.toml: the choice per stage
    blender = "laplacian"

    [stage_options.blender]       # ... and that stage's options
    levels = 5

    settings:                     # shots.yaml (a shot's `settings:` or `defaults:`)
      stage_options: {blender: {levels: 5}}

The block goes to the choice the settings pick for that stage (a fallback choice, such as the
``stylesync`` generator for a thin exemplar bank, gets none); the plugin manager refuses an
option that choice does not declare. A layer that picks another choice than the one the layers
below it wrote options for drops their block with ``stage_options: {blender: null}``. Settings
that more than one stage needs (``device``, ``weights``, ``batch_size``...:
:data:`SHARED_SETTINGS`) stay top-level and reach every choice that declares an option of the
same name; a block may not set them.

Before this, option blocks had their own names: ``blend`` (the blender, plus the render's
``feather_fraction``), ``exemplar`` (the exemplar generator), ``executor_options`` and the stage
keys of ``analysis``. They still work, each with a warning naming the new spelling: their keys
are merged across layers as before and laid *under* the new blocks (the new spelling wins).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from lipdub.analysis.settings import RUN_FIELDS, STAGE_FIELDS, AnalysisSettings
from lipdub.errors import ConfigError, did_you_mean
from lipdub.stages import STAGES

log = logging.getLogger(__name__)

#: Top-level settings that reach any stage whose choice declares an option of the same name
#: (the generator's device, weights, batch size...). Set once, for the whole render.
SHARED_SETTINGS = (
    "device",
    "weights",
    "model",
    "batch_size",
    "audio_scale",
    "compile",
    "precision",
)

#: Deprecated option blocks -> the stage whose block they now are.
LEGACY_BLOCKS = {"blend": "blender", "exemplar": "generator", "executor_options": "executor"}
#: Keys of the deprecated ``analysis`` stage keys -> their stage (``shot_method`` is the
#: scenedetect detector's and was never a field of the analysis record).
LEGACY_ANALYSIS_KEYS = {
    **{name: stage for stage, names in STAGE_FIELDS.items() for name in names},
    "shot_method": "shots",
}
_ANALYSIS_DEFAULTS = AnalysisSettings()
#: What a deprecated block's warning adds about where its keys went.
_LEGACY_NOTES = {
    "blend": "; feather_fraction is now a setting of its own",
    "exemplar": " (used when the generator is exemplar, as before)",
    "executor_options": "",
}

Where = Callable[[tuple[str, ...]], str]


def new_spelling(stage: str) -> str:
    """How a stage's block is written, for messages."""
    return f"stage_options.{stage} ([stage_options.{stage}] in lipdub.toml)"


def check_stage_options(value: Mapping[str, Any], where: Where) -> dict[str, dict[str, Any] | None]:
    """Validate a ``stage_options`` mapping: stage names, one mapping each, no shared setting.

    ``where(path)`` names the place of ``("blender",)`` or ``("blender", "levels")`` (file:line).
    Which options a choice takes is the plugin manager's to check (it knows the choices). A
    block of ``None`` (YAML ``null``) drops what lower layers set for that stage.

    Raises:
        ConfigError: an unknown stage (with did-you-mean), a block that is not a mapping, or a
            shared setting set in a block.
    """
    out: dict[str, dict[str, Any] | None] = {}
    for stage, block in value.items():
        if stage not in STAGES:
            raise ConfigError(
                f"{where((stage,))}: stage_options: unknown stage {stage!r}"
                f"{did_you_mean(str(stage), list(STAGES))} (stages: {', '.join(STAGES)})"
            )
        if block is None:
            out[stage] = None
            continue
        if not isinstance(block, Mapping):
            raise ConfigError(
                f"{where((stage,))}: stage_options.{stage} must be a mapping of option names to "
                f"values (or null, to drop the block lower layers set), got {block!r}"
            )
        for key in block:
            if key in SHARED_SETTINGS:
                raise ConfigError(
                    f"{where((stage, key))}: stage_options.{stage}.{key}: {key!r} is a setting "
                    f"of the whole render; set it at the top level (it reaches every stage that "
                    "takes it)"
                )
        out[stage] = dict(block)
    return out


def same_kind(value: Any, default: Any) -> bool:
    """``value`` may stand where ``default`` does: same type, an int for a float, never a bool
    for a number."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    if isinstance(default, Mapping):
        return isinstance(value, Mapping)
    return isinstance(value, type(default))


def check_analysis(value: Mapping[str, Any], where: Where) -> dict[str, Any]:
    """Validate the ``analysis`` block: fields of the analysis run (``RUN_FIELDS``), or a
    built-in stage's option written the old way (kept, with a deprecation warning), each of the
    type of its default."""
    for key, given in value.items():
        stage = LEGACY_ANALYSIS_KEYS.get(key)
        if stage is None and key not in RUN_FIELDS:
            raise ConfigError(
                f"{where((key,))}: unknown analysis setting {key!r}"
                f"{did_you_mean(str(key), [*RUN_FIELDS, *LEGACY_ANALYSIS_KEYS])} (the analysis "
                f"run's: {', '.join(RUN_FIELDS)}; a stage's options go in stage_options.STAGE)"
            )
        default = getattr(_ANALYSIS_DEFAULTS, key, "")  # shot_method is a string.
        if not same_kind(given, default):
            raise ConfigError(
                f"{where((key,))}: analysis setting {key!r} must be {type(default).__name__} "
                f"like its default {default!r}, got {given!r}"
            )
        if stage is not None:
            log.warning(
                "%s: `analysis.%s` is deprecated: it is the %s stage's option; write it in %s",
                where((key,)),
                key,
                stage,
                new_spelling(stage),
            )
    return dict(value)


def warn_legacy(key: str, loc: str) -> None:
    """Say that the deprecated block ``key`` (at ``loc``) has a new spelling."""
    log.warning(
        "%s: `%s` is deprecated: move its keys to %s%s",
        loc,
        key,
        new_spelling(LEGACY_BLOCKS[key]),
        _LEGACY_NOTES[key],
    )


def lay_legacy(
    merged: dict[str, Any], options: dict[str, dict[str, Any]], legacy: Mapping[str, Any]
) -> None:
    """Move what the deprecated spellings set into ``merged`` (settings) and ``options`` (the
    stage blocks), under what the new spellings set.

    ``legacy``: the deprecated blocks merged across layers; ``merged["analysis"]`` may hold
    stage keys too. Only the exemplar generator ever read ``exemplar``, so it is used only when
    the generator is exemplar, as before.
    """
    moved: dict[str, dict[str, Any]] = {}
    blend = dict(legacy.get("blend", {}))
    if "feather_fraction" in blend:
        merged.setdefault("feather_fraction", blend.pop("feather_fraction"))
    moved["blender"] = blend
    moved["executor"] = dict(legacy.get("executor_options", {}))
    if (merged.get("generator") or STAGES["generator"].default) == "exemplar":
        moved["generator"] = dict(legacy.get("exemplar", {}))
    analysis = dict(merged.get("analysis", {}))
    for key in [k for k in analysis if k in LEGACY_ANALYSIS_KEYS]:
        moved.setdefault(LEGACY_ANALYSIS_KEYS[key], {})[key] = analysis.pop(key)
    merged["analysis"] = analysis
    for stage, block in moved.items():
        if block:
            options[stage] = {**block, **options.get(stage, {})}
