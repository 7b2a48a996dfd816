"""``lipdub render``: a shots file (a reel) or one clip (``--video/--audio/-o``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from lipdub.cli.common import (
    cli_settings,
    cut_detector,
    json_option,
    project_option,
    resolve_project,
    wants_json,
)
from lipdub.cli.reporting import Reporter
from lipdub.config.plan import Plan, load_plan, single_clip_plan
from lipdub.config.settings import FALLBACKS, preset_names
from lipdub.errors import EXIT_JOB_FAILED, ConfigError, Terminated
from lipdub.events import ShotEvent
from lipdub.media.audio import FIT_POLICIES
from lipdub.plugin_manager import PluginManager
from lipdub.timeline.cut import ADAPTERS
from lipdub.timeline.export import cut_of, export_cut, timeline_paths

if TYPE_CHECKING:
    from lipdub.render.protocols import JobResult
    from lipdub.render.shot_job import ShotJob


@click.command()
@click.argument("shots_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--video", type=click.Path(dir_okay=False, path_type=Path), help="One clip: video.")
@click.option("--audio", type=click.Path(dir_okay=False, path_type=Path), help="One clip: dub.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="One clip: output file (.mov, .mp4 or .mkv).",
)
@click.option("--shot", "shot_ids", multiple=True, help="Render only this shot (repeatable).")
@click.option("--list", "list_only", is_flag=True, help="List the shot jobs and exit.")
@click.option("--preset", help=f"Quality preset ({', '.join(preset_names())}).")
@click.option("--device", help="auto, cpu, cuda or cuda:N.")
@click.option("--executor", help="Executor plugin: local, ray, ...")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    help="Local executor: render this many shots at once, each in its own process (fewer when "
    "the memory available does not hold them).",
)
@click.option("--generator", help="Generator plugin (passthrough = no lip change, for tests).")
@click.option("--weights", help="Checkpoint name (weights/manifest.toml) or .safetensors path.")
@click.option(
    "--audio-scale",
    type=click.FloatRange(min=0, min_open=True),
    help="How far the dub moves the mouth from the one silence gives (default: the checkpoint's).",
)
@click.option(
    "--audio-fit",
    type=click.Choice(FIT_POLICIES),
    help="A dub longer or shorter than the shot: refuse (error), pad with silence, trim, or "
    "both (pad-trim, the default); every pad or trim is reported.",
)
@click.option("--actor", "actors", multiple=True, help="One clip: whose face to dub (repeatable).")
@click.option(
    "--dub-text",
    help="One clip: the dub's script (its words; @FILE reads them from a file). The mouth then "
    "follows the script's phones, aligned to the audio, instead of recognised ones.",
)
@click.option("--dub-language", help="One clip: the dub's language, eSpeak NG's code (de, fr...).")
@click.option("--no-personal", is_flag=True, help="Ignore actors' personalization files.")
@click.option(
    "--fallback",
    type=click.Choice(FALLBACKS),
    help="A track whose exemplar bank is too thin: keep the source's frames (source, the "
    "default; reported) or paint it with stylesync (its lite-v4 weights are research-only).",
)
@click.option(
    "--qc-syncnet",
    is_flag=True,
    help="QC also measures LSE-C/LSE-D with the manifest's SyncNet (research-only weights).",
)
@click.option("--force", is_flag=True, help="Re-render shots whose outputs already exist.")
@click.option(
    "--allow-still",
    is_flag=True,
    help="Render a still image given as a video (as a one-frame clip) instead of refusing it.",
)
@click.option(
    "--timeline-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="After the render, write the cut the shots were imported from with every dubbed shot "
    "relinked (.otio, .edl, .xml; one per dub: {dub} in the name, else _NAME is added).",
)
@json_option
@project_option
def render(
    shots_file,
    video,
    audio,
    output,
    shot_ids,
    list_only,
    preset,
    device,
    executor,
    jobs,
    generator,
    weights,
    audio_scale,
    audio_fit,
    actors,
    dub_text,
    dub_language,
    no_personal,
    fallback,
    qc_syncnet,
    force,
    allow_still,
    timeline_out,
    as_json,
    project_dir,
) -> None:
    """Render dubbed shots: `render shots.yaml`, or one clip: `render --video V --audio A -o OUT`.

    Every job is checked first (plugin names, device, weights, dub files, dub lengths); any
    problem stops the run before a frame is rendered (exit code 2). Outputs whose fingerprint
    matches their inputs are skipped unless --force; stale ones are rendered again. A shot that
    fails does not stop the others (exit code 1 at the end). Outputs appear under their final
    name only when complete.
    """
    one_clip = _check_form(shots_file, (video, audio, output), actors)
    if not one_clip and (dub_text or dub_language):
        raise ConfigError(
            "--dub-text/--dub-language are for the one-clip form; in shots.yaml give the dub "
            "`text:` (or `text_file:`) and `language:`"
        )
    near = shots_file.parent if shots_file else None
    project = resolve_project(project_dir, near)
    cli = cli_settings(
        preset=preset,
        device=device,
        executor=executor,
        generator=generator,
        weights=weights,
        audio_scale=audio_scale,
        audio_fit=audio_fit,
        personal=False if no_personal else None,
        fallback=fallback,
        qc_syncnet=True if qc_syncnet else None,
    )
    plugins = PluginManager(project.root if project.manifest else None)
    # Jobs pull in torch (weights, devices): imported when a render is asked for, so that the
    # other commands and `lipdub --help` start without it.
    from lipdub.render.jobs import check_jobs, run_job
    from lipdub.render.shot_job import ShotJob

    if one_clip:
        text = _read_text(dub_text)
        plan = single_clip_plan(
            video, audio, output, project, cli, tuple(actors), text, dub_language
        )
    else:
        plan = load_plan(shots_file, project, cli, cut_detector(plugins, project, cli))
    parallel = jobs
    jobs = [
        ShotJob(s.id, s, project.root, project.cache_dir, tuple(project.actors.values()), force)
        for s in plan.select(tuple(shot_ids))
    ]
    # The device is checked only where the jobs will run: here, with the local executor.
    executor = _with_jobs(_executor(plan, jobs), parallel)
    runs_here = not list_only and executor[0] == "local"
    warnings = check_jobs(
        plan, jobs, plugins, device_here=runs_here, writing=not list_only, allow_still=allow_still
    )
    if timeline_out is not None:  # Before any frame: a cut that changed is found now.
        timeline_paths(timeline_out, [d.name for s in plan.shots for d in s.dubs])
        cut_of(plan.timeline, plan.shots_file)
    if list_only:
        _list(jobs, wants_json(as_json), warnings)
        return
    results = _run(plan, jobs, plugins, wants_json(as_json), warnings, run_job, executor)
    if timeline_out is not None:
        _export(plan, results, timeline_out)
    if any(not r.ok for r in results):
        raise SystemExit(EXIT_JOB_FAILED)


def _check_form(shots_file: Path | None, one_clip_paths: tuple[Any, ...], actors: Any) -> bool:
    """Refuse a mix of the two forms (or half of the one-clip form); True for the one-clip
    form."""
    one_clip = any(x is not None for x in one_clip_paths)
    if one_clip and shots_file:
        raise ConfigError("give either SHOTS_FILE or --video/--audio/-o, not both")
    if not one_clip and not shots_file:
        raise ConfigError("nothing to render: give SHOTS_FILE, or --video V --audio A -o OUT")
    if one_clip and None in one_clip_paths:
        raise ConfigError("the one-clip form needs all of --video, --audio and -o")
    if shots_file is not None and shots_file.suffix.lower() in ADAPTERS:
        raise ConfigError(
            f"{shots_file} is an editorial cut; make it a shots file first: lipdub shots import "
            f"{shots_file} --dub 'NAME=audio/NAME/{{id}}.wav' (see docs/timeline.md)"
        )
    if actors and not one_clip:
        raise ConfigError("--actor is for the one-clip form; a shots file names actors per shot")
    return one_clip


def _export(plan: Plan, results: list[JobResult], timeline_out: Path) -> None:
    """The cut again, per dub, with what this run (and earlier ones) rendered relinked."""
    failed = {r.job_id: r.error or "failed" for r in results if not r.ok}
    assert plan.timeline is not None and plan.shots_file is not None
    written = export_cut(plan.timeline, plan.shots_file, plan.shots, failed, timeline_out)
    for name, path in written.items():
        click.echo(f"timeline ({name}): {path}", err=True)


def _executor(plan: Plan, jobs: list[ShotJob]) -> tuple[str, dict[str, Any]]:
    """The executor the run uses and its options: one executor runs every job, so shots that
    choose different ones are refused rather than all sent to the first one's.

    Raises:
        ConfigError: two of the jobs' shots set the executor or its options differently.
    """
    if not jobs:
        return "local", {}
    first = jobs[0].shot
    chosen = (first.settings.stage("executor"), first.settings.options("executor"))
    for job in jobs[1:]:
        s = job.shot
        other = (s.settings.stage("executor"), s.settings.options("executor"))
        if other != chosen:

            def said(choice: tuple[str, dict[str, Any]]) -> str:
                return repr(choice[0]) + (f" with {choice[1]}" if choice[1] else "")

            raise ConfigError(
                f"{plan.where(s, 'executor')}: shot {s.id!r} runs on {said(other)} but shot "
                f"{first.id!r} on {said(chosen)}; one run uses one executor: set `executor` "
                "(and `stage_options.executor`) in lipdub.toml or with --executor, not per shot"
            )
    return chosen


def _with_jobs(
    executor: tuple[str, dict[str, Any]], jobs: int | None
) -> tuple[str, dict[str, Any]]:
    """``--jobs N`` as the local executor's ``jobs`` option.

    Raises:
        ConfigError: --jobs with another executor (Ray places its tasks itself).
    """
    if jobs is None:
        return executor
    name, options = executor
    if name != "local":
        raise ConfigError(
            f"--jobs is for the local executor; executor {name!r} schedules shots itself "
            "(for ray: stage_options.executor num_cpus)"
        )
    return name, {**options, "jobs": jobs}


def _write_qc(plan: Plan, jobs: list[ShotJob]) -> Path | None:
    """The QC report over every output of the plan (farm tasks each add their shots)."""
    from lipdub.eval.report import write_report

    outputs = [d.output for s in plan.shots for d in s.dubs]
    if not jobs or not outputs:
        return None
    folder = Path(os.path.commonpath([str(p.resolve().parent) for p in outputs]))
    return write_report(folder, outputs, f"lipdub QC — {plan.project.name}")


def _list(jobs: list[ShotJob], as_json: bool, warnings: dict[str, list[str]]) -> None:
    for job in jobs:
        d = {**job.describe(), "warnings": warnings.get(job.job_id, [])}
        if as_json:
            click.echo(json.dumps(d))
        else:
            why = f" ({', '.join(d['changed'])})" if d["status"] == "stale" else ""
            click.echo(
                f"{d['id']:<16} {d['status']}{why}  frames {d['in']}-{d['out']} ({d['frames']}) "
                f"@ {d['fps']}  -> {', '.join(d['outputs'])}"
            )
            for dub in d["dubs"]:  # Where each dub sits against the shot's first frame.
                files = ", ".join(Path(a).name for a in dub["audio"])
                click.echo(f"{'':<16} dub {dub['name']}: {files} at {dub['offset']:+.3f} s")
            for w in d["warnings"]:
                click.echo(f"{'':<16} warning: {w}")


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While jobs run, SIGTERM (a farm cancelling the task) ends the run like Ctrl-C: every
    job's claims, partial files and scratch are cleaned up, a ``failed`` event says so, and the
    exit code is 143 (:class:`~lipdub.errors.Terminated`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(_signum: int, _frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(
    plan: Plan,
    jobs: list[ShotJob],
    plugins: PluginManager,
    as_json: bool,
    warnings: dict[str, list[str]],
    work: Callable[[ShotJob, Callable[[ShotEvent], None]], JobResult],
    executor_choice: tuple[str, dict[str, Any]] = ("local", {}),
) -> list[JobResult]:
    executor = plugins.create("executor", *executor_choice)
    with _sigterm_as_interrupt(), Reporter(as_json) as reporter:

        def emit(event):
            reporter(event)
            plugins.emit(event)

        for job in jobs:  # What the up-front checks found worth saying, before any frame.
            for w in warnings.get(job.job_id, []):
                emit(ShotEvent("warning", job.job_id, message=w))
        results = executor.run(jobs, work, emit)
    failed = [r for r in results if not r.ok]
    report = _write_qc(plan, jobs)
    if report is not None and not as_json:
        click.echo(f"QC report: {report}", err=True)
    if not as_json:
        done = sum(1 for r in results if r.ok and not r.skipped)
        skipped = sum(1 for r in results if r.skipped)
        click.echo(f"{done} rendered, {skipped} skipped, {len(failed)} failed", err=True)
    return list(results)


def _read_text(value: str | None) -> str | None:
    """``--dub-text``: the words, or ``@FILE``'s."""
    if value is None or not value.startswith("@"):
        return value
    path = Path(value[1:])
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--dub-text: cannot read {path} as UTF-8 text: {exc}") from None
