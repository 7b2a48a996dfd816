"""Shot jobs: the unit a farm or an executor runs, the checks made before any of them runs, and
the function that runs one.

A job is plain data (picklable), so it can be sent to another process or a Ray worker, and
:func:`run_job` rebuilds what it needs there (plugins, generator) from that data alone.

Re-running a job is safe: a dub whose output exists and whose fingerprint
(:mod:`lipdub.render.fingerprint`) still matches its inputs is skipped; a stale one is rendered
again, saying what changed. Each run first reclaims what killed runs left: scratch folders
(:mod:`lipdub.render.scratch`) and hidden partial outputs beside this job's outputs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lipdub.config.plan import Plan, check_dub_audio
from lipdub.config.shots import Shot
from lipdub.errors import ConfigError, DeviceError, LipdubError, PluginError, WeightsError
from lipdub.events import ShotEvent
from lipdub.manifest import existing_sidecar, load_manifest
from lipdub.media.atomic import remove_stale_partials
from lipdub.media.write import codec_for
from lipdub.plugin_manager import PluginManager
from lipdub.render.claim import Claims
from lipdub.render.fingerprint import (
    NO_FINGERPRINT,
    exemplar_driver,
    model_files,
    remove_fingerprint,
    write_fingerprint,
)
from lipdub.render.pipeline import render_shot
from lipdub.render.preflight import check_output_folders, check_sources
from lipdub.render.protocols import JobResult
from lipdub.render.scratch import reclaim_scratch
from lipdub.render.shot_job import DubState, ShotJob
from lipdub.stages import STAGES

log = logging.getLogger(__name__)


def check_jobs(
    plan: Plan,
    jobs: Sequence[ShotJob],
    plugins: PluginManager,
    device_here: bool,
    writing: bool = False,
    allow_still: bool = False,
) -> dict[str, list[str]]:
    """Check everything that can be checked before the first frame, for every job: each stage's
    plugin name and options block, the weights the settings name (files present, no model
    loaded), the device (when ``device_here``: the jobs run on this machine), every dub file
    (:func:`~lipdub.config.plan.check_dub_audio`), the sources (a still image, unless
    ``allow_still``; a frame size the codec cannot encode) and, when ``writing`` (a render, not
    a listing), that every output folder takes a new file (:mod:`lipdub.render.preflight`).

    Returns:
        Warnings by job id, to report before rendering.

    Raises:
        ConfigError: one line naming the file (and line) or option, the setting and the fix.
    """
    for job in jobs:
        shot, settings = job.shot, job.shot.settings
        for stage in STAGES:
            try:
                plugins.get(stage, settings.stage(stage))
            except PluginError as exc:
                raise ConfigError(f"{plan.where(shot, stage)}: shot {shot.id!r}: {exc}") from None
            _check_options(plan, shot, plugins, stage)
        if device_here and settings.device.startswith("cuda"):
            from lipdub.model.engine import select_device  # torch: only a CUDA device asks.

            try:
                select_device(settings.device)
            except DeviceError as exc:
                raise ConfigError(
                    f"{plan.where(shot, 'device')}: {exc}; use --device cpu, or auto (CUDA "
                    "wherever there is one)"
                ) from None
        _check_weights(plan, shot)
        for dub in shot.dubs:
            try:
                codec_for(settings.codec, dub.output)
            except ConfigError as exc:
                raise ConfigError(
                    f"{plan.where(shot, 'codec')}: shot {shot.id!r}: {exc}; name the output "
                    "for the codec or set the shot's `codec`"
                ) from None
    shots = [j.shot for j in jobs]
    check_sources(plan, shots, allow_still)
    warnings = check_dub_audio(plan, shots, plan.project.cache_dir)
    if writing:  # Last: every other check has passed, so what follows is the render.
        check_output_folders(plan, shots)
    for job in jobs:
        if job.shot.notes:
            warnings[job.job_id] = [*job.shot.notes, *warnings.get(job.job_id, [])]
    return warnings


def _check_options(plan: Plan, shot: Shot, plugins: PluginManager, stage: str) -> None:
    """The shot's block for ``stage`` fits its choice; when the misfit options are another
    choice's (a block written for the choice a lower layer picked), say how to drop it."""
    choice, block = shot.settings.stage(stage), shot.settings.options(stage)
    try:
        plugins.check_options(stage, choice, block)
    except PluginError as exc:
        declared = plugins.get(stage, choice).choice.options
        misfit = set(block) - set(declared)
        owners = [n for n, r in plugins.choices(stage).items() if misfit <= set(r.choice.options)]
        hint = (
            f"; those are {owners[0]!r}'s options: a shot that picks another {stage} than the "
            f"one they were written for drops them with `stage_options: {{{stage}: null}}`"
            if owners and misfit
            else ""
        )
        where = plan.where(shot, f"stage_options.{stage}")
        raise ConfigError(f"{where}: shot {shot.id!r}: {exc}{hint}") from None


def _check_weights(plan: Plan, shot: Shot) -> None:
    """The checkpoints the shot's settings name exist, each with the JSON beside it."""
    try:
        files = model_files(shot.settings)
    except WeightsError as exc:
        manifest = load_manifest()
        names = ", ".join(n for n, e in manifest.entries.items() if e.kind == "generator")
        raise ConfigError(
            f"{plan.where(shot, 'weights')}: {exc}; give a generator of the manifest "
            f"({names}) or a .safetensors path"
        ) from None
    if shot.settings.stage("generator") == "exemplar" and exemplar_driver(shot.settings) is None:
        raise ConfigError(
            f"{plan.where(shot, 'generator')}: the exemplar generator needs a mouth driver and "
            f"{load_manifest().path} sets no default_driver; set stage_options.generator.driver "
            "to a driver's name or .safetensors path"
        )
    for model in files:
        try:
            existing_sidecar(model.path, f"{model.role} weights")
        except WeightsError as exc:
            where = plan.where(shot, model.setting) if model.setting else load_manifest().path
            raise ConfigError(f"{where}: {exc}") from None


def run_job(job: ShotJob, emit: Callable[[ShotEvent], None]) -> JobResult:
    """Render every dub of ``job``'s shot that is not done; never raises for the shot's own
    failure (an interrupt is reported as ``failed`` and raised on).

    The job first claims its outputs (:mod:`lipdub.render.claim`): when another live renderer
    holds one of them, the job is skipped, saying who holds it; the claims are released however
    the job ends.
    """
    t0 = time.perf_counter()
    started = time.time()
    reclaim_scratch(job.cache_dir, started)
    outputs = tuple(str(d.output) for d in job.shot.dubs)
    try:
        claims = Claims([d.output for d in job.shot.dubs]).acquire()
    except OSError as exc:
        message = f"cannot claim the outputs ({exc}); is the output folder writable?"
        emit(ShotEvent("failed", job.job_id, message=message))
        return JobResult(job.job_id, ok=False, error=message)
    with claims:
        if claims.blocked is not None:
            message = f"claimed by {claims.blocked.describe()}: another render is at work on it"
            emit(ShotEvent("skipped", job.job_id, message=message, outputs=outputs))
            return JobResult(job.job_id, ok=True, outputs=outputs, skipped=True)
        for warning in claims.warnings:
            emit(ShotEvent("warning", job.job_id, message=warning))
        try:
            return _run_claimed(job, emit, t0, started, outputs)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: say so, then let it end the run.
            why = str(exc) or "SIGINT"
            message = f"interrupted ({why}); no partial output of it is left"
            emit(ShotEvent("failed", job.job_id, message=message))
            raise


def _run_claimed(
    job: ShotJob,
    emit: Callable[[ShotEvent], None],
    t0: float,
    started: float,
    outputs: tuple[str, ...],
) -> JobResult:
    """:func:`run_job` once the job holds its outputs' claims."""
    try:
        prints = job.fingerprints()
        states = job.states(prints)
    except (LipdubError, OSError) as exc:
        emit(ShotEvent("failed", job.job_id, message=str(exc)))
        return JobResult(job.job_id, ok=False, error=str(exc))
    todo = [st for st in states if job.force or st.status != "done"]
    if not todo:
        _remove_partials(job, started)
        emit(
            ShotEvent(
                "skipped",
                job.job_id,
                message="outputs exist and match their fingerprints (use --force to redo)",
                outputs=outputs,
            )
        )
        return JobResult(job.job_id, ok=True, outputs=outputs, skipped=True)
    stale = "; ".join(_why(st) for st in todo if st.status == "stale")
    message = f"stale ({stale}); rendering again" if stale else ""
    emit(ShotEvent("started", job.job_id, total=job.shot.frame_count, message=message))
    before = {}
    for st in todo:
        if st.status == "stale":  # Its output is about to change; a done one's stays right.
            remove_fingerprint(st.dub.output)
        before[st.dub.name] = _stat(st.dub.output)
    # The pipeline renders every dub of the shot it is given (force): give it the ones to do.
    shot = dataclasses.replace(job.shot, dubs=tuple(st.dub for st in todo))
    report: dict[str, Any] = {}
    try:
        report = render_shot(dataclasses.replace(job, shot=shot, force=True), emit)
    except LipdubError as exc:
        message = str(exc)
    except Exception as exc:  # A bug must fail this shot, not the whole reel; keep the trace.
        log.debug("shot %s crashed:\n%s", job.job_id, traceback.format_exc())
        message = f"internal error: {type(exc).__name__}: {exc}"
    else:
        message = ""
    finally:
        found = _found_actors(job, report)
        for st in todo:  # Those written by this run, even when a later dub failed.
            now = _stat(st.dub.output)
            if now is not None and now != before[st.dub.name]:
                write_fingerprint(st.dub.output, prints[st.dub.name].only_found(found))
        _remove_partials(job, started)
    seconds = time.perf_counter() - t0
    if message:
        emit(ShotEvent("failed", job.job_id, message=message))
        return JobResult(job.job_id, ok=False, error=message, seconds=seconds)
    emit(ShotEvent("finished", job.job_id, outputs=outputs, data={"seconds": seconds, **report}))
    return JobResult(job.job_id, ok=True, outputs=outputs, seconds=seconds, report=report)


def _found_actors(job: ShotJob, report: dict[str, Any]) -> tuple[str, ...] | None:
    """For a shot that names no actors, the project's actors its render dubbed (from the
    report's tracks); None when the shot names them, or the render did not get that far."""
    if job.names_actors() or "generator" not in report:
        return None
    project = {a.name for a in job.actors}
    return tuple(sorted({t["actor"] for t in report.get("tracks", [])} & project))


def _why(state: DubState) -> str:
    """Why a stale dub is rendered again: `de: audio, gain_db changed`."""
    name = state.dub.name
    if state.changed == (NO_FINGERPRINT,):
        return f"{name}: {NO_FINGERPRINT}"
    return f"{name}: {', '.join(c.removesuffix(f':{name}') for c in state.changed)} changed"


def _stat(path: Path) -> tuple[int, int, int] | None:
    """(inode, mtime, size) of ``path``: a file moved into place is a new inode."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _remove_partials(job: ShotJob, started: float) -> None:
    """Hidden partial outputs killed runs left beside this job's outputs."""
    for dub in job.shot.dubs:
        for path in remove_stale_partials(dub.output, started):
            log.info("removed %s (partial output of a killed render)", path)
