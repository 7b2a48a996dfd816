"""Shot jobs: the unit a farm or an executor runs, and the function that runs one.

A job is plain data (picklable), so it can be sent to another process or a Ray worker, and
:func:`run_job` rebuilds what it needs there (plugins, generator) from that data alone.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lipdub.config.project import ActorConfig
from lipdub.config.shots import Shot
from lipdub.errors import LipdubError
from lipdub.render.events import ShotEvent
from lipdub.render.protocols import JobResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShotJob:
    """Everything needed to render one shot's dubs, anywhere."""

    job_id: str  # The shot id.
    shot: Shot  # The resolved shot.
    project_root: Path  # For project-local plugins and actor files.
    cache_dir: Path  # Analysis cache.
    actors: tuple[ActorConfig, ...]  # Actor definitions (identity references, personal files).
    force: bool = False  # Re-render even when every output exists.

    def describe(self) -> dict[str, Any]:
        """The job as a JSON-able record (for ``--list --json``)."""
        s = self.shot
        return {
            "id": self.job_id,
            "source": str(s.source),
            "in": s.start,
            "out": s.stop,
            "frames": s.frame_count,
            "fps": f"{s.fps.numerator}/{s.fps.denominator}",
            "actors": list(s.actors),
            "outputs": [str(d.output) for d in s.dubs],
            "done": all(d.output.exists() for d in s.dubs),
            "preset": s.settings.preset,
            "generator": s.settings.stage("generator"),
        }


def run_job(job: ShotJob, emit: Any) -> JobResult:
    """Render every dub of ``job``'s shot; never raises for the shot's own failure."""
    t0 = time.perf_counter()
    outputs = tuple(str(d.output) for d in job.shot.dubs)
    if not job.force and all(d.output.exists() for d in job.shot.dubs):
        emit(
            ShotEvent(
                "skipped",
                job.job_id,
                message="outputs exist (use --force to redo)",
                outputs=outputs,
            )
        )
        return JobResult(job.job_id, ok=True, outputs=outputs, skipped=True)
    emit(ShotEvent("started", job.job_id, total=job.shot.frame_count))
    try:
        from lipdub.render.pipeline import render_shot

        report = render_shot(job, emit)
    except LipdubError as exc:
        message = str(exc)
    except Exception as exc:  # A bug must fail this shot, not the whole reel; keep the trace.
        log.debug("shot %s crashed:\n%s", job.job_id, traceback.format_exc())
        message = f"internal error: {type(exc).__name__}: {exc}"
    else:
        seconds = time.perf_counter() - t0
        emit(
            ShotEvent("finished", job.job_id, outputs=outputs, data={"seconds": seconds, **report})
        )
        return JobResult(job.job_id, ok=True, outputs=outputs, seconds=seconds, report=report)
    emit(ShotEvent("failed", job.job_id, message=message))
    return JobResult(job.job_id, ok=False, error=message, seconds=time.perf_counter() - t0)
