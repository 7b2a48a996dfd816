"""Build and store an actor's bank from their footage in lipdub.toml (``lipdub personalize``).

Each footage clip is analysed (through the project's analysis cache, so a clip analysed for a
render is not analysed again), its longest face track is taken as the actor's (footage lists
clips of that actor speaking, as for ΔW/ΔP), and one streaming pass cuts the track's patches into
``actors/NAME/bank/<NN>-<clip>/``. Renders of the actor's shots then select from these frames
as well as from the shot's own.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from lipdub.analysis.pipeline import analyze_shot
from lipdub.config.project import ActorConfig
from lipdub.errors import ConfigError
from lipdub.exemplar.bank import BANK_DIR, PartBuilder
from lipdub.media.read import open_video
from lipdub.media.stream import prefetch

log = logging.getLogger(__name__)

#: Tracks shorter than this (frames) are not worth a bank part.
MIN_TRACK_FRAMES = 10


def build_actor_bank(
    actor: ActorConfig,
    project_root: Path,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Cut the actor's footage into bank parts; returns the part folders written.

    A previous bank of the actor is replaced only once the new one is complete.

    Raises:
        ConfigError: the actor lists no footage, or no clip shows a usable face track.
    """
    if not actor.footage:
        raise ConfigError(f"actor {actor.name!r} has no footage in lipdub.toml to build a bank of")
    root = Path(project_root)
    final = root / actor.personal_dir / BANK_DIR
    staging = final.with_name(BANK_DIR + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    written = []
    for k, video in enumerate(actor.footage):
        if progress:
            progress(k, len(actor.footage))
        analysis = analyze_shot(video, cache_dir=root / ".lipdub" / "cache")
        tracks = [t for t in analysis.tracks if len(t) >= MIN_TRACK_FRAMES]
        if not tracks:
            log.warning("%s: no face track of %d+ frames; not in the bank", video, MIN_TRACK_FRAMES)
            continue
        track = max(tracks, key=len)
        folder = staging / f"{k:02d}-{Path(video).stem}"
        folder.mkdir(parents=True)
        shape = (analysis.height, analysis.width, 3)
        builder = PartBuilder(str(video), track, shape, folder / "patches.npy")
        with open_video(video) as src:
            for i, frame in enumerate(prefetch(src.frames(0, analysis.stop))):
                j = track.at(i)
                if j is not None:
                    builder.add(j, frame)
        part = builder.finish()
        part.save(folder)
        log.info("%s: %d of %d frames usable", video, int(part.usable.sum()), len(part))
        written.append(folder.name)
    if not written:
        shutil.rmtree(staging, ignore_errors=True)
        raise ConfigError(f"actor {actor.name!r}: no footage clip has a usable face track")
    if progress:
        progress(len(actor.footage), len(actor.footage))
    shutil.rmtree(final, ignore_errors=True)
    staging.rename(final)
    return [final / name for name in written]
