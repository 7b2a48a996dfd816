"""The plan: a project plus its shots, every setting resolved, every file checked, once.

Commands build a :class:`Plan` and pass typed records on; nothing below reads config files.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lipdub.config.project import ProjectConfig
from lipdub.config.settings import check_layer, resolve
from lipdub.config.shots import (
    Dub,
    Shot,
    check_range,
    frame_of,
    load_shots_file,
    parse_dubs,
    source_error,
)
from lipdub.errors import ConfigError, MediaError
from lipdub.media.atomic import refuse_overwriting_source
from lipdub.media.read import VideoInfo, open_video

#: Splits [start, stop) of a source into shots; returns the first frame of each new shot.
CutDetector = Callable[[Path, int, int], list[int]]


@dataclass(frozen=True)
class Plan:
    """What to render: the project and its resolved shots, in manifest order."""

    project: ProjectConfig
    shots: tuple[Shot, ...]
    shots_file: Path | None = None

    def select(self, ids: tuple[str, ...]) -> tuple[Shot, ...]:
        """The shots named by ``ids`` (all when empty); an unknown id is an error."""
        if not ids:
            return self.shots
        by_id = {s.id: s for s in self.shots}
        for sid in ids:
            if sid not in by_id:
                raise ConfigError(f"{self.shots_file}: no shot {sid!r} (shots: {', '.join(by_id)})")
        return tuple(by_id[sid] for sid in ids)


def _probe(path: Path, where: str, conform: bool) -> VideoInfo:
    try:
        with open_video(path, conform=conform) as src:
            return src.info
    except MediaError as exc:
        raise source_error(exc, where) from None


def load_plan(
    shots_path: Path,
    project: ProjectConfig,
    cli: Mapping[str, Any],
    cut_detector: CutDetector | None = None,
) -> Plan:
    """Resolve ``shots_path`` against ``project`` and the command line's settings ``cli``.

    Raises:
        ConfigError: anything wrong in the shots file, with file, line and fix.
    """
    raws, defaults = load_shots_file(shots_path)
    base = shots_path.resolve().parent  # Absolute: jobs may run in another folder or machine.
    cli_layer = check_layer(cli, "command line")
    shots: list[Shot] = []
    for raw in raws:
        item = raw.data
        sid = str(item["id"])
        where = f"{shots_path}:{item.line}"
        settings = resolve(project.layer, defaults, raw.layer, cli_layer)
        src_value = item.get("source")
        if not isinstance(src_value, str):
            raise ConfigError(f"{where}: shot {sid!r} needs `source:` (a video file)")
        source = base / src_value
        src_where = f"{shots_path}:{item.line_of('source')}"
        if not source.is_file():
            raise ConfigError(f"{src_where}: source file {source} does not exist")
        info = _probe(source, src_where, settings.conform_vfr)
        actors = item.get("actors") or []
        if isinstance(actors, str):
            actors = [actors]
        if not isinstance(actors, list) or not all(isinstance(a, str) for a in actors):
            raise ConfigError(f"{shots_path}:{item.line_of('actors')}: `actors` must be a list")
        for actor in actors:
            project.actor(actor, f"{shots_path}:{item.line_of('actors')}")
        dubs = parse_dubs(item, base, str(shots_path), sid, settings.container)
        for dub in dubs:
            refuse_overwriting_source(dub.output, source)
            for stem_actor in dub.stems:
                project.actor(stem_actor, f"{shots_path}:{item.line_of('dubs')}")
        ranges = _ranges(item, info, shots_path, sid, cut_detector)
        for n, (start, stop) in enumerate(ranges, 1):
            shot_id = sid if len(ranges) == 1 else f"{sid}.{n}"
            shot_dubs = dubs if len(ranges) == 1 else tuple(_renamed(d, sid, shot_id) for d in dubs)
            shots.append(
                Shot(
                    id=shot_id,
                    source=source,
                    start=start,
                    stop=stop,
                    fps=info.fps,
                    actors=tuple(actors),
                    dubs=shot_dubs,
                    settings=settings,
                    auto_range=len(ranges) > 1 or item.get("range") == "auto",
                    line=item.line,
                    start_timecode=info.start_timecode,
                )
            )
    _refuse_shared_outputs(shots, shots_path)
    return Plan(project=project, shots=tuple(shots), shots_file=shots_path)


def _ranges(
    item: Any, info: VideoInfo, path: Path, sid: str, cut_detector: CutDetector | None
) -> list[tuple[int, int]]:
    rng = item.get("range")
    if rng is not None:
        where = f"{path}:{item.line_of('range')}"
        if rng != "auto":
            raise ConfigError(f"{where}: `range` can only be `auto` (or use in/out)")
        if "in" in item or "out" in item:
            raise ConfigError(f"{where}: shot {sid!r}: use either `range: auto` or in/out")
        if cut_detector is None:
            raise ConfigError(f"{where}: `range: auto` needs a shot detector plugin")
        cuts = [c for c in cut_detector(info.path, 0, info.frame_count) if 0 < c < info.frame_count]
        bounds = [0, *sorted(set(cuts)), info.frame_count]
        return list(itertools.pairwise(bounds))
    start = frame_of(
        item.get("in", 0), info.fps, info.start_timecode, f"{path}:{item.line_of('in')}", "in"
    )
    stop = frame_of(
        item.get("out", info.frame_count),
        info.fps,
        info.start_timecode,
        f"{path}:{item.line_of('out')}",
        "out",
    )
    check_range(start, stop, info.frame_count, f"{path}:{item.line_of('out')}", sid)
    return [(start, stop)]


def _renamed(dub: Dub, sid: str, shot_id: str) -> Dub:
    """A dub of an auto-split shot writes one file per sub-shot."""
    name = dub.output.name.replace(sid, shot_id, 1)
    if name == dub.output.name:
        name = f"{dub.output.stem}_{shot_id}{dub.output.suffix}"
    return Dub(
        name=dub.name,
        output=dub.output.with_name(name),
        audio=dub.audio,
        stems=dub.stems,
        mix=dub.mix,
        offset_s=dub.offset_s,
        gain_db=dub.gain_db,
    )


def _refuse_shared_outputs(shots: list[Shot], path: Path) -> None:
    seen: dict[Path, str] = {}
    for shot in shots:
        for dub in shot.dubs:
            key = dub.output.resolve()
            if key in seen:
                raise ConfigError(
                    f"{path}:{shot.line}: shot {shot.id!r} writes {dub.output}, which shot "
                    f"{seen[key]!r} writes too; give each dub its own `output`"
                )
            seen[key] = shot.id


def single_clip_plan(
    video: Path,
    audio: Path,
    output: Path,
    project: ProjectConfig,
    cli: Mapping[str, Any],
    actors: tuple[str, ...] = (),
) -> Plan:
    """The plan for ``lipdub render --video V --audio A -o OUT``: one shot, the whole clip."""
    cli_layer = check_layer(cli, "command line")
    settings = resolve(project.layer, cli_layer)
    video, audio, output = video.absolute(), audio.absolute(), output.absolute()
    if not video.is_file():
        raise ConfigError(f"{video}: no such video file")
    if not audio.is_file():
        raise ConfigError(f"{audio}: no such audio file")
    refuse_overwriting_source(output, video, audio)
    for actor in actors:
        project.actor(actor, "--actor")
    info = _probe(video, "--video", settings.conform_vfr)
    dub = Dub(name=audio.stem, output=output, audio=audio)
    shot = Shot(
        id=video.stem,
        source=video,
        start=0,
        stop=info.frame_count,
        fps=info.fps,
        actors=actors,
        dubs=(dub,),
        settings=settings,
        start_timecode=info.start_timecode,
    )
    return Plan(project=project, shots=(shot,))
