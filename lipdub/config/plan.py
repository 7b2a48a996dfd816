"""The plan: a project plus its shots, every setting resolved, every file checked, once.

Commands build a :class:`Plan` and pass typed records on; nothing below reads config files. The
plan remembers where each shot's settings were set (file and line, a command-line option), so a
check that runs later (:func:`check_dub_audio`, ``lipdub.render.jobs.check_jobs``) can name it.

:func:`check_dub_audio` looks at every dub file before anything renders; what it learns of a
file (rate, length, peak) is cached by content in ``<cache>/audio/<blake2b>.json``.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from lipdub.analysis.cache import file_hash
from lipdub.config.project import MANIFEST, ProjectConfig
from lipdub.config.settings import check_layer, load_preset, resolve
from lipdub.config.shots import (
    Dub,
    Shot,
    check_range,
    frame_of,
    load_shots_file,
    parse_dubs,
    source_error,
)
from lipdub.config.stage_options import LEGACY_BLOCKS
from lipdub.config.yamlfile import LineDict
from lipdub.errors import ConfigError, MediaError
from lipdub.media.atomic import refuse_overwriting_source
from lipdub.media.audio import Audio, fit_to_length, load_audio, samples_for_frames
from lipdub.media.read import VideoInfo, open_video
from lipdub.media.write import CODECS, codec_fitting

#: Splits [start, stop) of a source into shots; returns the first frame of each new shot. The
#: last argument: number the frames of the source conformed onto a constant grid (conform_vfr).
CutDetector = Callable[[Path, int, int, bool], list[int]]
#: A dub file whose peak is below this (one step of 16-bit audio) is digitally silent.
SILENT_PEAK = 2.0**-15
#: Command-line options that set a setting under another name.
_OPTION_OF = {"personal": "--no-personal"}


@dataclass(frozen=True)
class Plan:
    """What to render: the project and its resolved shots, in manifest order."""

    project: ProjectConfig
    shots: tuple[Shot, ...]
    shots_file: Path | None = None
    # Shot id -> setting -> where it was set ("shots.yaml:12", "--device", "lipdub.toml (...)").
    origins: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # The shots file's `timeline:` block (the cut it was imported from), for exporting the cut.
    timeline: Mapping[str, Any] | None = None

    def where(self, shot: Shot, key: str) -> str:
        """Where ``shot``'s setting ``key`` came from, for messages: file and line, the command
        line option, the preset, or the built-in defaults."""
        origin = self.origins.get(shot.id, {}).get(key)
        if origin is not None:
            return origin
        if key in load_preset(shot.settings.preset):
            return f"preset {shot.settings.preset!r} ({key})"
        return f"the built-in default ({key})"

    def shot_where(self, shot: Shot) -> str:
        """The shot's place in the shots file ("FILE:LINE"), or the one-clip options."""
        return f"{self.shots_file}:{shot.line}" if self.shots_file else "--audio"

    def select(self, ids: tuple[str, ...]) -> tuple[Shot, ...]:
        """The shots named by ``ids`` (all when empty); an unknown id is an error."""
        if not ids:
            return self.shots
        by_id = {s.id: s for s in self.shots}
        for sid in ids:
            if sid not in by_id:
                raise ConfigError(f"{self.shots_file}: no shot {sid!r} (shots: {', '.join(by_id)})")
        return tuple(by_id[sid] for sid in ids)


def probe_source(path: Path, where: str, conform: bool) -> VideoInfo:
    """The source's VideoInfo, read once per file version: a cut imported from a feature's EDL
    has ~1,500 shots over a few dozen files."""
    try:
        stat = path.stat()
        return _probe_file(path, stat.st_mtime_ns, stat.st_size, conform)
    except MediaError as exc:
        raise source_error(exc, where) from None


@functools.lru_cache(maxsize=256)
def _probe_file(path: Path, mtime_ns: int, size: int, conform: bool) -> VideoInfo:
    with open_video(path, conform=conform) as src:
        return src.info


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
    raws, defaults, timeline = load_shots_file(shots_path)
    base = shots_path.resolve().parent  # Absolute: jobs may run in another folder or machine.
    cli_layer = check_layer(cli, "command line")
    shots: list[Shot] = []
    origins: dict[str, dict[str, str]] = {}
    for raw in raws:
        item = raw.data
        sid = str(item["id"])
        where = f"{shots_path}:{item.line}"
        settings = resolve(project.layer, defaults, raw.layer, cli_layer)
        own = item.get("settings") or LineDict()
        origin = _origins(
            (project.layer, lambda k: f"{project.manifest or MANIFEST} ({k})"),
            (defaults, lambda k: f"{shots_path} `defaults:` ({k})"),
            (raw.layer, functools.partial(_line_in, shots_path, own)),
            (cli_layer, _option),
        )
        src_value = item.get("source")
        if not isinstance(src_value, str):
            raise ConfigError(f"{where}: shot {sid!r} needs `source:` (a video file)")
        source = base / src_value
        src_where = f"{shots_path}:{item.line_of('source')}"
        if not source.is_file():
            raise ConfigError(f"{src_where}: source file {source} does not exist")
        info = probe_source(source, src_where, settings.conform_vfr)
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
        ranges = _ranges(item, info, shots_path, sid, cut_detector, settings.conform_vfr)
        for n, (start, stop) in enumerate(ranges, 1):
            shot_id = sid if len(ranges) == 1 else f"{sid}.{n}"
            origins[shot_id] = origin
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
                    dub_span=(ranges[0][0], ranges[-1][1]) if len(ranges) > 1 else None,
                    line=item.line,
                    start_timecode=info.start_timecode,
                    timeline=item.get("timeline"),
                )
            )
    _refuse_shared_outputs(shots, shots_path)
    return Plan(
        project=project,
        shots=tuple(shots),
        shots_file=shots_path,
        origins=origins,
        timeline=timeline,
    )


def _line_in(path: Path, block: LineDict, key: str) -> str:
    """Where a shot's own ``settings:`` ``block`` sets ``key`` (a function of the key, as
    :func:`_origins` takes; a lambda with a bound default is one a type checker cannot type)."""
    return f"{path}:{block.line_of(key)} ({key})"


def _option(key: str) -> str:
    return _OPTION_OF.get(key, f"--{key.replace('_', '-')}")


def _origins(*layers: tuple[Mapping[str, Any], Callable[[str], str]]) -> dict[str, str]:
    """Setting -> where the highest layer that sets it says it was set (lowest layer first);
    a stage's block counts as ``stage_options.STAGE``, also when written the deprecated way."""
    out: dict[str, str] = {}
    for layer, where in layers:
        for key, value in layer.items():
            out[key] = where(key)
            stages = value if key == "stage_options" else [LEGACY_BLOCKS.get(key)]
            out.update({f"stage_options.{s}": where(key) for s in stages if s})
    return out


def _ranges(
    item: Any,
    info: VideoInfo,
    path: Path,
    sid: str,
    cut_detector: CutDetector | None,
    conform: bool,
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
        found = cut_detector(info.path, 0, info.frame_count, conform)
        cuts = [c for c in found if 0 < c < info.frame_count]
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
    return replace(dub, output=dub.output.with_name(name))


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
    text: str | None = None,
    language: str | None = None,
) -> Plan:
    """The plan for ``lipdub render --video V --audio A -o OUT``: one shot, the whole clip.

    ``text`` is the dub's script (``--dub-text``) in ``language`` (``--dub-language``); without
    it a ``NAME.txt`` beside the audio is read, when a language is given."""
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
    info = probe_source(video, "--video", settings.conform_vfr)
    notes: tuple[str, ...] = ()
    # A suffix no codec fits is left to the render's up-front checks (analysis writes no file).
    fitting = codec_fitting(settings.codec, output)
    if fitting not in (None, settings.codec) and "codec" not in cli_layer:
        notes = (
            f"-o {output.name}: codec {fitting!r} chosen for {output.suffix} "
            f"(the {settings.preset!r} settings' {settings.codec!r} needs "
            f"{', '.join(CODECS[settings.codec].containers)}); name a "
            f"{CODECS[settings.codec].containers[0]} file to keep {settings.codec!r}",
        )
        settings = replace(settings, codec=fitting)
    if text is not None and not text.strip():
        raise ConfigError("--dub-text: the script is empty")
    if text is not None and language is None:
        raise ConfigError("--dub-text needs --dub-language (eSpeak NG's code, e.g. de)")
    dub = Dub(
        name=audio.stem,
        output=output,
        audio=audio,
        text=None if text is None else text.strip(),
        text_origin="--dub-text",
        language=language,
    )
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
        notes=notes,
    )
    origin = _origins((project.layer, lambda k: f"{project.manifest} ({k})"), (cli_layer, _option))
    return Plan(project=project, shots=(shot,), origins={shot.id: origin})


@dataclass(frozen=True)
class AudioSummary:
    """What the up-front checks need to know of an audio file."""

    rate: int  # Samples per second.
    samples: int  # Length in samples.
    peak: float  # Largest absolute sample value (0 for digital silence).


def audio_summary(path: Path, cache_dir: Path) -> AudioSummary:
    """``path``'s rate, length and peak, decoded once per content (cached in ``cache_dir``).

    Raises:
        MediaError: no audio stream, or not decodable.
    """
    cached = cache_dir / "audio" / f"{file_hash(path, cache_dir)}.json"
    try:
        return AudioSummary(**json.loads(cached.read_text()))
    except (OSError, ValueError, TypeError):
        pass
    audio = load_audio(path)
    summary = AudioSummary(
        audio.rate, audio.samples.shape[1], float(np.abs(audio.samples).max(initial=0.0))
    )
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f".{cached.stem}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(summary)))
    tmp.replace(cached)
    return summary


def check_dub_audio(plan: Plan, shots: Iterable[Shot], cache_dir: Path) -> dict[str, list[str]]:
    """Check every dub file of ``shots`` before anything renders: it has an audio stream with
    samples in it, and its length with the dub's offset is one the shot's ``audio_fit`` accepts.

    Returns:
        Warnings by shot id: a digitally silent file (allowed: the mouths rest, see
        lipdub.analysis.rest; but more often a muted export than a wish).

    Raises:
        ConfigError: naming the shots file and line, the dub, the file and the fix.
    """
    summaries: dict[Path, AudioSummary] = {}
    warnings: dict[str, list[str]] = {}
    for shot in shots:
        for dub in shot.dubs:
            where = f"{plan.shot_where(shot)}: shot {shot.id!r} dub {dub.name!r}"
            files = {"audio": dub.audio, "mix": dub.mix}
            files |= {f"stem {actor}": path for actor, path in dub.stems.items()}
            silent = []
            for role, path in files.items():
                if path is None:
                    continue
                if path not in summaries:
                    try:
                        summaries[path] = audio_summary(path, cache_dir)
                    except MediaError as exc:
                        raise ConfigError(
                            f"{where}: {role}: {exc}; give a wav, flac, mp3 or m4a with sound"
                        ) from None
                summary = summaries[path]
                if summary.peak < SILENT_PEAK:
                    silent.append(role)
                _check_fit(summary, shot, dub, f"{where} ({path.name})")
            for role in silent:  # Allowed (every mouth rests), but likely the wrong file.
                who = "that actor's mouth" if role.startswith("stem") else "every dubbed mouth"
                warnings.setdefault(shot.id, []).append(
                    f"{dub.name}: {role} {files[role]} is digitally silent (every sample is 0): "
                    f"{who} will not speak; check the export if that is not meant"
                )
    return warnings


def _check_fit(summary: AudioSummary, shot: Shot, dub: Dub, what: str) -> None:
    """Refuse now what :func:`~lipdub.media.audio.fit_to_length` would refuse mid-render."""
    shift = round(dub.offset_s * summary.rate)  # As apply_offset_gain shifts the dub.
    have = max(summary.samples + shift, 0)
    first, last = shot.dub_frames  # A sub-shot's dub is judged over the whole span.
    need = samples_for_frames(last - first, shot.fps, summary.rate)
    # A zero-stride stand-in as long as the shifted dub: fit_to_length looks only at its shape.
    stand_in = Audio(np.broadcast_to(np.zeros((1, 1), np.float32), (1, have)), summary.rate)
    fit_to_length(stand_in, need, shot.settings.audio_fit, what)
