"""Built-in generator plugin ``exemplar``: the lower face taken from real frames of the actor.

Options (the generator's block, ``stage_options.generator``, when the generator is exemplar):

- ``driver``: what gives the selection its target mouth shape per frame
  (:mod:`lipdub.exemplar.target`): ``viseme-table`` (rule-based over the dub's visemes and the
  actor's own frames; no weights), or a learned mouth-driver checkpoint (a name in
  weights/manifest.toml or a path; ``mouth-driver-v1`` is research-only and warns); None: the
  manifest's ``default_driver`` (``viseme-table``); ``manifest``: another manifest.toml (tests);
- the :class:`~lipdub.exemplar.track.ExemplarSettings` fields: ``holdout`` (frames of the same
  source never shown within ±N of the output frame), ``fade`` (cross-fade half-width at joins),
  ``min_frames`` / ``min_spread`` (a thinner bank keeps the source, or takes the ``fallback``
  setting's generator), the selection
  weights ``shape``, ``yaw``, ``pitch``, ``light``, ``jump``, ``hold``, ``run_bonus``, and the
  phonetic ones: ``viseme`` (the dub's visemes against each bank frame's mouth class; 0 turns
  the phonetic selection off, p/b/m closures included), ``replay`` (the shot's own frames near
  where they were filmed, which would replay the original line), ``apart`` (lips shut where
  the target's are apart: closures outside the dub's p/b/m) and ``closure_lead`` (frames
  before each p/b/m that show closed lips too).

The bank is the track's own usable frames plus whatever ``lipdub personalize`` stored for the
actor in ``actors/NAME/bank/`` (their footage in lipdub.toml).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lipdub.analysis.records import FaceTrack
from lipdub.exemplar.bank import BANK_DIR, BankPart, stored_parts, usable_by_landmarks
from lipdub.exemplar.target import ShapeDriver, open_driver
from lipdub.exemplar.track import ExemplarSettings, ExemplarTrack, thin_reason
from lipdub.hookspecs import hookimpl
from lipdub.render.protocols import TrackContext
from lipdub.stages import StageChoice

log = logging.getLogger(__name__)


class ExemplarGenerator:
    """The ``exemplar`` stage object: a driver and settings; one :class:`ExemplarTrack` a track."""

    def __init__(self, driver: ShapeDriver, settings: ExemplarSettings) -> None:
        self.driver, self.settings = driver, settings
        self._parts: dict[Path | None, list[BankPart]] = {}

    def _extra(self, context: TrackContext) -> list[BankPart]:
        """The actor's stored parts, less any cut from this very shot (its own track is in the
        bank already)."""
        key = context.actor_dir
        if key not in self._parts:
            self._parts[key] = [] if key is None else stored_parts(key / BANK_DIR)
        return [p for p in self._parts[key] if p.source != context.source]

    def thin(self, track: FaceTrack, context: TrackContext) -> str | None:
        """Why the track's bank (its own usable frames + the stored ones) is too thin, or None.

        The track's own frames are judged on their landmarks (:func:`usable_by_landmarks`):
        a track whose frames are all turned, bridged or cut by the frame's edge falls back here,
        before the pass over the source, rather than failing after it.
        """
        extra = self._extra(context)
        stored = [p.landmarks[p.usable] for p in extra]
        own = track.landmarks[usable_by_landmarks(track, context.frame_shape)]
        return thin_reason([own, *stored], self.settings)

    def open_track(self, track: FaceTrack, context: TrackContext) -> ExemplarTrack:
        """Start rendering ``track``."""
        return ExemplarTrack(
            track,
            context.frame_shape,
            context.source,
            context.scratch,
            self._extra(context),
            self.driver,
            context.planner,
            context.feather,
            self.settings,
        )


def create(options: Mapping[str, Any]) -> ExemplarGenerator:
    """Factory for the ``exemplar`` choice.

    Raises:
        ConfigError: an unknown or invalid exemplar option.
        WeightsError: a chosen driver checkpoint is missing or does not verify.
    """
    driver = open_driver(options.get("driver"), options.get("manifest"))
    block = {k: v for k, v in options.items() if k in SETTING_DEFAULTS}
    return ExemplarGenerator(driver, ExemplarSettings.from_options(block))


#: What `lipdub plugins list` says of the choice's terms (weights/MODEL_CARD.md, "Licences").
LICENCE = (
    "clean by default: the actor's own frames, the rule-based viseme-table driver (no weights) "
    "and the hama phone recognizer (Apache-2.0); research-only by choice: the driver "
    "mouth-driver-v1, and a thin bank's fallback to stylesync lite-v4 (both warn)"
)

#: The ExemplarSettings fields and their defaults (the selection and fallback options).
SETTING_DEFAULTS: dict[str, Any] = dataclasses.asdict(ExemplarSettings())


@hookimpl
def lipdub_generators() -> list[StageChoice]:
    """Offer the exemplar generator."""
    return [
        StageChoice(
            name="exemplar",
            factory=create,
            summary="the actor's own frames, chosen by the dub's phones and visemes, "
            "warped at native res",
            options={"driver": None, "manifest": None, **SETTING_DEFAULTS},
            # Its texture is the actor's own footage; its default driver is rule-based.
            licence=LICENCE,
        )
    ]
