"""A shot job: the unit a farm or an executor runs, as plain (picklable) data, and the state
of its outputs against their fingerprints (done, stale with what changed, or todo)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lipdub.config.project import ActorConfig
from lipdub.config.shots import Dub, Shot
from lipdub.render.claim import holder_of
from lipdub.render.fingerprint import (
    Fingerprint,
    dub_fingerprint,
    read_fingerprint,
    shot_fingerprint_parts,
)


@dataclass(frozen=True)
class DubState:
    """Where one dub's output stands."""

    dub: Dub  # The dub.
    status: str  # "done" (exists, fingerprint matches), "stale" (exists, does not) or "todo".
    changed: tuple[str, ...] = ()  # For "stale": what differs (see Fingerprint.changed).

    def record(self) -> dict[str, Any]:
        """JSON-able form, for ``--list --json``."""
        dub = self.dub
        return {
            "name": dub.name,
            "output": str(dub.output),
            "status": self.status,
            "changed": list(self.changed),
            # Where the dub starts against the shot's first frame (seconds; positive: later).
            "offset": dub.offset_s,
            "audio": [str(p) for p in (dub.audio, dub.mix, *dub.stems.values()) if p],
        }


@dataclass(frozen=True)
class ShotJob:
    """Everything needed to render one shot's dubs, anywhere."""

    job_id: str  # The shot id.
    shot: Shot  # The resolved shot.
    project_root: Path  # For project-local plugins and actor files.
    cache_dir: Path  # Analysis cache.
    actors: tuple[ActorConfig, ...]  # Actor definitions (identity references, personal files).
    force: bool = False  # Re-render even when every output exists and is up to date.

    def dubbed_actors(self) -> list[ActorConfig]:
        """Actors whose files may shape the outputs: the shot's (and its stems'), or every
        project actor when the shot names none (then any face found may be one of them)."""
        named = set(self.shot.actors) | {a for d in self.shot.dubs for a in d.stems}
        return [a for a in self.actors if a.name in named] if named else list(self.actors)

    def names_actors(self) -> bool:
        """True when the shot says whose faces it dubs (``actors``, or stems per actor)."""
        return bool(self.shot.actors) or any(d.stems for d in self.shot.dubs)

    def fingerprints(self) -> dict[str, Fingerprint]:
        """Each dub's fingerprint as its inputs are now, by dub name.

        Raises:
            WeightsError: a broken weights manifest (the up-front checks refuse it first).
        """
        shared = shot_fingerprint_parts(
            self.shot, self.project_root, self.cache_dir, self.dubbed_actors()
        )
        return {d.name: dub_fingerprint(d, shared, self.cache_dir) for d in self.shot.dubs}

    def states(self, prints: dict[str, Fingerprint] | None = None) -> list[DubState]:
        """Each dub's state; ``prints`` = :meth:`fingerprints` when already computed."""
        dubs = self.shot.dubs
        if prints is None and any(d.output.exists() for d in dubs):
            prints = self.fingerprints()
        out = []
        for dub in dubs:
            if not dub.output.exists() or prints is None:
                out.append(DubState(dub, "todo"))
                continue
            old = read_fingerprint(dub.output)
            now = prints[dub.name]
            if old is not None and not self.names_actors():
                now = now.only_found(old.found)  # Only the actors its render found count.
            changed = now.changed(old)
            out.append(DubState(dub, "stale" if changed else "done", tuple(changed)))
        return out

    def describe(self) -> dict[str, Any]:
        """The job as a JSON-able record (for ``--list --json``)."""
        s = self.shot
        states = self.states()
        status, changed = summary(states)
        return {
            "id": self.job_id,
            "source": str(s.source),
            "in": s.start,
            "out": s.stop,
            "frames": s.frame_count,
            "fps": f"{s.fps.numerator}/{s.fps.denominator}",
            "actors": list(s.actors),
            "outputs": [str(d.output) for d in s.dubs],
            "status": status,
            "changed": changed,
            "done": status == "done",
            "dubs": [st.record() for st in states],
            # Renderers at work on its outputs now (`HOST:PID since ...`): a farm can tell a
            # running job from one to dispatch.
            "claimed_by": sorted(
                {h.describe() for h in map(holder_of, (d.output for d in s.dubs)) if h}
            ),
            "preset": s.settings.preset,
            "generator": s.settings.stage("generator"),
        }


def summary(states: Sequence[DubState]) -> tuple[str, list[str]]:
    """A job's status from its dubs' ("done" when all are, "todo" when one has no output,
    else "stale") and everything that changed, each name once."""
    if all(st.status == "done" for st in states):
        status = "done"
    else:
        status = "todo" if any(st.status == "todo" for st in states) else "stale"
    changed = [c for st in states for c in st.changed]
    return status, sorted(set(changed), key=changed.index)
