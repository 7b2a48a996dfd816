"""Built-in generator plugin ``stylesync``: the StyleSync generator with MaLS (lipdub.model).

Options: ``device``, ``weights``, ``model``, ``batch_size``, ``compile``, ``precision`` and
``audio_scale`` are the top-level render settings of those names (``SHARED_SETTINGS`` in
:mod:`lipdub.config.stage_options`, routed by :meth:`lipdub.plugin_manager.PluginManager.build`);
``personal`` and ``manifest`` are for callers that build it directly:

- ``device``: "auto" | "cpu" | "cuda" | "cuda:N" (DeviceError if CUDA is asked for but absent).
- ``weights``: a checkpoint name from weights/manifest.toml, a path to a ``.safetensors`` file,
  None for the manifest's ``default_generator``, or ``"random-init"`` for an *untrained* model
  with a fixed seed (tests and benchmarks only; its output is noise).
- ``batch_size``: frames per batch. ``compile``: wrap the model in ``torch.compile``.
- ``model``: "full" | "lite", the architecture used by ``"random-init"`` (a checkpoint carries
  its own config in the JSON beside it, verified against the safetensors and the manifest).
- ``personal``: an actor's personalization file (ΔW MLP + ΔP), or None.
- ``precision``: "auto" (bf16 on CUDA) | "fp32" | "bf16".
- ``audio_scale``: s > 0 in the generator's w_0 + s·(w − w_0) (how far the audio moves the mouth
  from the one silence gives; lipdub.model.generator), or None for the checkpoint's own
  (``audio_scale`` in its manifest entry; 1 for a bare file or random-init).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lipdub.hookspecs import hookimpl
from lipdub.manifest import RANDOM_INIT
from lipdub.stages import StageChoice

if TYPE_CHECKING:  # The model layer imports torch: loaded when the generator is built, not
    # when the plugin registers (every command registers it).
    from lipdub.model.engine import StyleSyncEngine
    from lipdub.model.generator import StyleSyncGenerator

log = logging.getLogger(__name__)
#: The terms of the bundled generator weights (weights/MODEL_CARD.md, "Licences").
RESEARCH_WEIGHTS = "research-only: bundled weights (lite-v4) trained on research-only clips"

RANDOM_INIT_SEED = 0  # Seed of the random-init model (same numbers on every machine).

DEFAULTS: dict[str, Any] = {
    "device": "auto",
    "weights": None,
    "batch_size": 16,
    "compile": False,
    "model": "full",
    "personal": None,
    "precision": "auto",
    "audio_scale": None,
    "manifest": None,  # Another manifest.toml (tests); None = weights/manifest.toml.
}


def build_model(options: Mapping[str, Any]) -> tuple[StyleSyncGenerator, str]:
    """Build or load the generator named by ``options``; return it and a label for logs.

    Raises:
        WeightsError: the named checkpoint or file is missing, tampered with or mismatched.
    """
    import torch

    from lipdub.model.checkpoint import generator_file, resolve_generator
    from lipdub.model.config import get_config
    from lipdub.model.generator import StyleSyncGenerator

    weights = options.get("weights")
    if weights == RANDOM_INIT:
        cfg = get_config(options.get("model") or "full")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_INIT_SEED)
            model = StyleSyncGenerator(cfg)
        label = f"random-init {cfg.name} (UNTRAINED, seed {RANDOM_INIT_SEED})"
        log.warning("stylesync: using an untrained %s model; its output is noise", cfg.name)
        return model, label
    hint = f"pass weights={RANDOM_INIT!r} for an untrained model"
    _, entry = generator_file(weights, options.get("manifest"), no_default_hint=hint)
    if entry is not None and entry.licence.startswith("research-only"):
        log.warning("generator stylesync loads %s, under terms: %s", entry.name, entry.licence)
    return resolve_generator(weights, options.get("manifest"), no_default_hint=hint)


def create(options: Mapping[str, Any]) -> StyleSyncEngine:
    """Factory for the ``stylesync`` choice: returns a Generator-protocol engine."""
    from lipdub.model.checkpoint import audio_scale_for
    from lipdub.model.engine import StyleSyncEngine
    from lipdub.model.personal import apply_personal

    opts = {**DEFAULTS, **dict(options)}
    model, label = build_model(opts)
    scale = opts["audio_scale"]
    if scale is None:
        random_init = opts["weights"] == RANDOM_INIT
        scale = 1.0 if random_init else audio_scale_for(opts["weights"], opts.get("manifest"))
    if opts.get("personal"):
        apply_personal(model, Path(opts["personal"]))
        label += f" + {opts['personal']}"
    return StyleSyncEngine(
        model,
        device=opts["device"],
        batch_size=int(opts["batch_size"]),
        compile=bool(opts["compile"]),
        precision=opts["precision"],
        label=label,
        audio_scale=float(scale),
    )


@hookimpl
def lipdub_generators() -> list[StageChoice]:
    """Offer the StyleSync generator."""
    return [
        StageChoice(
            name="stylesync",
            factory=create,
            summary="StyleSync generator + MaLS temporal smoothing (lipdub.model)",
            options=dict(DEFAULTS),
            licence=RESEARCH_WEIGHTS,
        )
    ]
