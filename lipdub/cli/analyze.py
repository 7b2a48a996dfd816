"""``lipdub analyze``: cuts, faces, tracks and actors of a shots file or one clip."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from lipdub.cli.common import json_option, project_option, resolve_project, wants_json
from lipdub.config.plan import Plan, load_plan, single_clip_plan
from lipdub.config.settings import ANALYSIS_STAGES
from lipdub.config.shots import Shot
from lipdub.errors import ConfigError
from lipdub.plugin_manager import PluginManager


@click.command()
@click.argument("shots_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--video", type=click.Path(dir_okay=False, path_type=Path), help="One clip.")
@click.option("--shot", "shot_ids", multiple=True, help="Only this shot (repeatable).")
@click.option(
    "--overlay",
    type=click.Path(path_type=Path),
    help="Debug view: a video with boxes, ids, actors, landmarks and masks, plus a contact "
    "sheet PNG (a folder for a shots file, a .mp4 path for --video).",
)
@click.option("--cuts", "cuts_only", is_flag=True, help="Only list the cuts.")
@json_option
@project_option
def analyze(shots_file, video, shot_ids, overlay, cuts_only, as_json, project_dir) -> None:
    """Detect cuts, faces, landmarks, tracks and actors; optionally draw a debug overlay.

    Results are cached under .lipdub/cache, so a later render of the same shot skips analysis.
    """
    if bool(shots_file) == bool(video):
        raise ConfigError("give either SHOTS_FILE or --video")
    project = resolve_project(project_dir, shots_file.parent if shots_file else None)
    plugins = PluginManager(project.root if project.manifest else None)
    if video:
        if overlay is not None and overlay.suffix.lower() not in (".mp4", ".mov", ".mkv"):
            raise ConfigError(f"{overlay}: with --video, --overlay is a video path (.mp4)")
        plan = _clip_plan(video, project)
    else:
        plan = load_plan(shots_file, project, {}, _detector(plugins))
    json_out = wants_json(as_json)
    for shot in plan.select(tuple(shot_ids)):
        record = _analyze_one(shot, plan, plugins, overlay, cuts_only, single=bool(video))
        if json_out:
            click.echo(json.dumps(record))
        else:
            _print(record)


def _clip_plan(video: Path, project) -> Plan:
    """A one-shot plan over the whole clip (analysis reads no dub, so the video stands in)."""
    return single_clip_plan(video, video, video.with_suffix(".lipdub-analysis"), project, {})


def _detector(plugins: PluginManager):
    def detect(path: Path, start: int, stop: int, conform: bool = False) -> list[int]:
        from lipdub.analysis.shot_analysis import detect_cuts

        return detect_cuts(path, start, stop, plugins.create("shots", "scenedetect"), conform)

    return detect


def _analyze_one(
    shot: Shot,
    plan: Plan,
    plugins: PluginManager,
    overlay: Path | None,
    cuts_only: bool,
    single: bool,
) -> dict[str, Any]:
    from lipdub.analysis.shot_analysis import analyze_shot, detect_cuts

    settings = shot.settings
    record: dict[str, Any] = {
        "shot": shot.id,
        "source": str(shot.source),
        "in": shot.start,
        "out": shot.stop,
    }
    if cuts_only:  # Cuts alone: the shot detector, no face work.
        detector = plugins.build("shots", settings)
        cuts = detect_cuts(shot.source, shot.start, shot.stop, detector, settings.conform_vfr)
        record["cuts"] = [
            {"frame": c, "timecode": shot.timecode_at(c)} for c in cuts if c > shot.start
        ]
        return record
    stages = {n: plugins.build(n, settings) for n in ANALYSIS_STAGES}
    project = plan.project
    with click.progressbar(
        length=shot.frame_count, label=f"{shot.id} analysis", file=sys.stderr
    ) as bar:
        last = [0]

        def progress(done: int, total: int) -> None:
            bar.update(done - last[0])
            last[0] = done

        analysis = analyze_shot(
            shot.source,
            shot.start,
            shot.stop,
            project.actors,
            settings.analysis_settings(),
            stages,
            project.cache_dir,
            progress,
            conform=settings.conform_vfr,
        )
    record["cuts"] = [
        {"frame": c, "timecode": shot.timecode_at(c)} for c in analysis.cuts if c > shot.start
    ]
    record.update(
        coverage=round(analysis.coverage, 4),
        seconds=round(analysis.seconds, 2),
        warnings=analysis.warnings,
        tracks=[
            {
                "track": t.track_id,
                "actor": t.actor,
                "distance": None
                if t.actor_distance == float("inf")
                else round(float(t.actor_distance), 3),
                "first": int(t.frames[0]) + shot.start,
                "last": int(t.frames[-1]) + shot.start,
            }
            for t in analysis.tracks
        ],
    )
    if overlay is not None:
        from lipdub.analysis.overlay import write_contact_sheet, write_overlay

        if single:
            video_path, sheet = overlay, overlay.with_suffix(".png")
        else:
            overlay.mkdir(parents=True, exist_ok=True)
            video_path, sheet = overlay / f"{shot.id}.mp4", overlay / f"{shot.id}.png"
        write_overlay(shot.source, analysis, video_path, stages["masks"])
        write_contact_sheet(shot.source, analysis, sheet)
        record["overlay"], record["contact_sheet"] = str(video_path), str(sheet)
    return record


def _print(record: dict[str, Any]) -> None:
    click.echo(f"{record['shot']}: frames {record['in']}-{record['out']} of {record['source']}")
    for cut in record["cuts"]:
        click.echo(f"  cut at frame {cut['frame']} ({cut['timecode']})")
    if "tracks" in record:
        click.echo(f"  faces on {record['coverage']:.1%} of frames")
        for t in record["tracks"]:
            dist = "" if t["distance"] is None else f" (distance {t['distance']})"
            click.echo(f"  track {t['track']}: {t['actor']}{dist}, frames {t['first']}-{t['last']}")
        for w in record["warnings"]:
            click.echo(f"  warning: {w}")
    for key in ("overlay", "contact_sheet"):
        if key in record:
            click.echo(f"  wrote {record[key]}")
