"""Build and store an actor's bank from their footage and shots (``lipdub personalize``).

Two kinds of footage go in. The clips under ``[actors.NAME] footage`` in lipdub.toml show the
actor speaking, so their longest face track is taken as the actor's (as for ΔW/ΔP). The shots of
a shots file that list the actor are analysed over their own range, and only the tracks that
identity matching names after the actor are taken. Analyses go through the project's cache, so
footage analysed for a render is not analysed again; one streaming pass per clip cuts the patches
into ``actors/NAME/bank/<NN>-<name>/``. Renders of the actor's shots then select from these
frames as well as from the shot's own.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from lipdub.analysis.records import FaceTrack, ShotAnalysis
from lipdub.analysis.settings import AnalysisSettings
from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.config.project import ActorConfig
from lipdub.config.shots import Shot
from lipdub.errors import ConfigError
from lipdub.exemplar.bank import BANK_DIR, PartBuilder
from lipdub.media.read import open_video
from lipdub.media.stream import prefetch

log = logging.getLogger(__name__)

#: Tracks shorter than this (frames) are not worth a bank part.
MIN_TRACK_FRAMES = 10


@dataclass(frozen=True)
class Footage:
    """One piece of the actor's footage to bank."""

    label: str  # Source label of the part ("shot:<id>" for shots: renders hold out on it).
    video: Path  # The clip.
    start: int = 0  # First frame (absolute).
    stop: int | None = None  # One past the last (None: the clip's end).
    named_only: bool = False  # Only tracks identified as the actor (else: the longest track).


def actor_footage(actor: ActorConfig, shots: tuple[Shot, ...] = ()) -> list[Footage]:
    """The actor's lipdub.toml footage, then every shot of ``shots`` that lists the actor."""
    out = [Footage(str(v), Path(v)) for v in actor.footage]
    out += [
        Footage(f"shot:{s.id}", s.source, s.start, s.stop, named_only=True)
        for s in shots
        if actor.name in s.actors
    ]
    return out


def _tracks(
    footage: Footage,
    actor: ActorConfig,
    actors: Mapping[str, ActorConfig],
    root: Path,
    analysis_with: tuple[AnalysisSettings, Mapping[str, object]] | None,
) -> tuple[ShotAnalysis, list[FaceTrack]]:
    """The analysis of ``footage`` and its tracks of the actor, with the project's analysis
    stages and settings: the bank's landmarks must be the ones its renders see (a bank cut
    with the mesh's lips and a render fitted with dlib68's would judge closed lips apart)."""
    settings, stages = analysis_with if analysis_with is not None else (None, None)
    analysis = analyze_shot(
        footage.video,
        footage.start,
        footage.stop,
        actors if footage.named_only else None,
        settings,
        stages,
        cache_dir=root / ".lipdub" / "cache",
    )
    tracks = [t for t in analysis.tracks if len(t) >= MIN_TRACK_FRAMES]
    if footage.named_only:
        return analysis, [t for t in tracks if t.actor == actor.name]
    return analysis, [max(tracks, key=len)] if tracks else []


def _cut(footage: Footage, analysis: ShotAnalysis, tracks: list[FaceTrack], folder: Path) -> int:
    """One pass over the footage cutting every track's part into ``folder``/t<id>; usable
    frames written."""
    shape = (analysis.height, analysis.width, 3)
    builders = []
    for t in tracks:
        (folder / f"t{t.track_id}").mkdir(parents=True)
        patches = folder / f"t{t.track_id}" / "patches.npy"
        builders.append(PartBuilder(footage.label, t, shape, patches))
    with open_video(footage.video) as src:
        frames = src.frames(analysis.start, analysis.stop)
        for i, frame in enumerate(prefetch(frames)):
            for b in builders:
                j = b.track.at(i)
                if j is not None:
                    b.add(j, frame)
    usable = 0
    for t, b in zip(tracks, builders, strict=True):
        part = b.finish()
        part.save(folder / f"t{t.track_id}")
        usable += int(part.usable.sum())
    return usable


def build_actor_bank(
    actor: ActorConfig,
    project_root: Path,
    actors: Mapping[str, ActorConfig],
    shots: tuple[Shot, ...] = (),
    progress: Callable[[int, int], None] | None = None,
    analysis_with: tuple[AnalysisSettings, Mapping[str, object]] | None = None,
) -> list[Path]:
    """Cut the actor's footage and shots into bank parts; returns the part folders written.

    A previous bank of the actor is replaced only once the new one is complete.

    Arguments:
        actor: the actor.
        project_root: the project (cache, actors/).
        actors: every actor of the project (identity matching in shots needs the others too).
        shots: resolved shots; those listing the actor are banked too.
        progress: called as ``progress(done, total)`` per clip.
        analysis_with: the project's analysis settings and built analysis stages (faces,
            landmarker, tracker), which the bank is cut with; None: the built-in defaults.

    Raises:
        ConfigError: no footage or shot of the actor, or none shows a usable face track.
    """
    items = actor_footage(actor, shots)
    if not items:
        raise ConfigError(
            f"actor {actor.name!r} has no footage in lipdub.toml and no shot lists them"
        )
    root = Path(project_root)
    final = root / actor.personal_dir / BANK_DIR
    staging = final.with_name(BANK_DIR + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    written: list[str] = []
    for k, item in enumerate(items):
        if progress:
            progress(k, len(items))
        analysis, tracks = _tracks(item, actor, actors, root, analysis_with)
        if not tracks:
            log.warning("%s: no face track of %s; not in the bank", item.label, actor.name)
            continue
        name = f"{k:02d}-{Path(item.label).stem if not item.named_only else item.label[5:]}"
        usable = _cut(item, analysis, tracks, staging / name)
        log.info("%s: %d usable frames in %d track(s)", item.label, usable, len(tracks))
        written += [f"{name}/t{t.track_id}" for t in tracks]
    if not written:
        shutil.rmtree(staging, ignore_errors=True)
        raise ConfigError(f"actor {actor.name!r}: no footage clip or shot has a usable face track")
    if progress:
        progress(len(items), len(items))
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return [final / name for name in written]
