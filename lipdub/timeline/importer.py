"""``lipdub shots import``: the clips of a cut's video track as a shots file.

Each clip that can be dubbed becomes a shot: its media file, ``in``/``out`` in the media's own
timecode (widened by handles), a stable id (event number and clip name), the dub audio per
language (from a file pattern or from the cut's audio tracks), and a ``timeline:`` block that
remembers where the clip sits in the cut, so that ``lipdub render --timeline-out`` can hand the
dubbed shots back as the same cut. Clips that cannot be dubbed are listed in the file's
top-level ``timeline.refused`` with the reason.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import opentimelineio as otio
import yaml

from lipdub.config.timecode import format_timecode
from lipdub.errors import ConfigError, MediaError
from lipdub.media.atomic import atomic_output
from lipdub.media.read import probe
from lipdub.timeline.cut import (
    adapter_for,
    audio_track,
    read_cut,
    record_range,
    unread_edl_lines,
    video_track,
)
from lipdub.timeline.items import CutClip, read_track
from lipdub.timeline.media import AUDIO_SUFFIXES, VIDEO_SUFFIXES, MediaFinder, media_files

_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")
#: Fields a ``--dub`` pattern can name.
PATTERN_FIELDS = ("id", "event", "clip", "reel")


@dataclass(frozen=True)
class ImportOptions:
    """How to read the cut and what to attach to its shots."""

    track: str | None = None  # Video track: number (V2), name, or None for the first.
    media_dirs: tuple[Path, ...] = ()  # Folders to find media in by reel / clip name.
    rate: Fraction | None = None  # An EDL's rate; None: the rate of the media under media_dirs.
    handles: int = 0  # Extra frames rendered each side of every clip.
    dubs: tuple[tuple[str, str], ...] = ()  # (dub name, file pattern with {id} {event}...).
    dub_tracks: tuple[tuple[str, str], ...] = ()  # (dub name, audio track: A2 or its name).
    actors: tuple[tuple[str | None, str], ...] = ()  # (shot id / event / clip, or None: all).
    # The --dub files start at the shot's first frame (they carry the handles' audio); False:
    # they start at the clip's record in point, so the head handle is silence.
    dub_preroll: bool = False


@dataclass
class ImportResult:
    """The shots file's content, and what became of every clip."""

    data: dict[str, Any]  # The shots file as written.
    shots: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)  # {event, clip, reason}.
    skipped: list[str] = field(default_factory=list)  # Gaps, generators, nested sequences.
    notes: list[str] = field(default_factory=list)  # Per-shot decisions (handles, dubs).


def import_cut(cut: Path, out: Path, options: ImportOptions) -> ImportResult:
    """Read ``cut`` and build the shots file ``out`` would hold (paths relative to its folder).

    Raises:
        ConfigError: the cut cannot be read, has no such track, an EDL's rate cannot be known,
            no dub is given, or no clip could become a shot.
    """
    if not options.dubs and not options.dub_tracks:
        raise ConfigError("give at least one dub: --dub de=audio/de/{id}.wav or --dub-track de=A2")
    for name, pattern in options.dubs:
        _check_pattern(name, pattern)
    files = media_files(options.media_dirs)
    video_finder = MediaFinder(cut.parent, options.media_dirs, VIDEO_SUFFIXES, files)
    rate = options.rate
    if adapter_for(cut) == "cmx_3600" and rate is None:
        rate = _media_rate(cut, video_finder)
    timeline = read_cut(cut, rate)
    number, track = video_track(timeline, options.track)
    reading = read_track(timeline, track, video_finder, options.handles)
    audio_finder = MediaFinder(cut.parent, options.media_dirs, AUDIO_SUFFIXES, files)
    result = ImportResult(data={}, skipped=list(reading.skipped))
    if adapter_for(cut) == "cmx_3600":  # What the reader dropped without a word.
        result.skipped += unread_edl_lines(cut)
    ids = _ids(reading.clips)
    _check_actor_keys(options.actors, reading.clips, ids)
    for clip in reading.clips:
        if clip.problem is not None:
            result.refused.append(_refusal(clip, clip.problem))
            continue
        dubs, missing = _dubs(clip, ids[clip.index], timeline, options, audio_finder, out.parent)
        if not dubs:
            result.refused.append(_refusal(clip, "no dub audio: " + "; ".join(missing)))
            continue
        result.notes += [f"{clip.label}: {n}" for n in (*clip.notes, *missing)]
        result.shots.append(_shot(clip, ids[clip.index], dubs, options.actors, out.parent))
    if not result.shots:
        why = "; ".join(f"event {r['event']}: {r['reason']}" for r in result.refused[:5])
        raise ConfigError(f"{cut}: no clip of the track can be dubbed ({why or 'no clips'})")
    result.data = {
        "timeline": {
            "file": _relative(cut, out.parent),
            "sha256": hashlib.sha256(cut.read_bytes()).hexdigest(),
            "track": number + 1,
            "rate": str(rate) if rate is not None else None,
            "handles": options.handles,
            "refused": result.refused,
            "skipped": result.skipped,
        },
        "shots": result.shots,
    }
    return result


def write_shots(result: ImportResult, out: Path, cut: Path) -> None:
    """Write the imported shots file (through a partial file: never half a file)."""
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    head = (
        f"# Imported by `lipdub shots import` from {cut.name} on {stamp}.\n"
        "# Each shot's `timeline:` block is where its clip sits in the cut (for --timeline-out);\n"
        "# `timeline.refused` lists the clips that are not shots, and why.\n"
    )
    text = head + yaml.safe_dump(result.data, sort_keys=False, allow_unicode=True, width=100)
    with atomic_output(out) as partial:
        partial.write_text(text)


def _media_rate(cut: Path, finder: MediaFinder) -> Fraction:
    """An EDL's rate, from the media it points at: the one rate of the files under --media, or,
    where they differ, the rate at which every clip the EDL names (read at that rate) finds
    media of that same rate."""
    rates: dict[Fraction, list[str]] = {}
    for path in finder.files():
        try:
            rates.setdefault(probe(path).fps, []).append(path.name)
        except MediaError:
            continue
    if len(rates) == 1:
        return next(iter(rates))
    for rate in sorted(rates):
        try:
            timeline = read_cut(cut, rate)
        except ConfigError:
            continue  # A label that does not exist at this rate (frame 29 at 25 fps...).
        clips = timeline.find_clips()
        found = {path for path, _ in map(finder.find, clips) if path is not None}
        if found and all(path.name in rates[rate] for path in found):
            return rate
    listed = "; ".join(f"{float(r):.3f} fps: {', '.join(n[:3])}" for r, n in rates.items())
    raise ConfigError(
        f"{cut}: an EDL does not say its frame rate, and "
        + (f"its media under --media do not tell ({listed})" if rates else "no --media given")
        + "; give --rate"
    )


def _check_pattern(name: str, pattern: str) -> None:
    fields = re.findall(r"{(\w*)", pattern)
    unknown = [f for f in fields if f not in PATTERN_FIELDS]
    if unknown or not fields:
        raise ConfigError(
            f"--dub {name}={pattern}: a pattern names each shot's file with "
            f"{', '.join('{' + f + '}' for f in PATTERN_FIELDS)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else " (it has none)")
        )


def _ids(clips: tuple[CutClip, ...]) -> dict[int, str]:
    """Clip index -> shot id: the event number and the clip's name (stable while the cut's
    order is), e.g. ``003_sh030``."""
    width = max(3, len(str(len(clips))))
    out = {}
    for clip in clips:
        slug = _SLUG.sub("_", clip.name).strip("_.-")[:40]
        out[clip.index] = f"{clip.event:0{width}d}" + (f"_{slug}" if slug else "")
    return out


def _check_actor_keys(
    actors: tuple[tuple[str | None, str], ...], clips: tuple[CutClip, ...], ids: dict[int, str]
) -> None:
    known = {ids[c.index] for c in clips} | {str(c.event) for c in clips} | {c.name for c in clips}
    for key, name in actors:
        if key is not None and key not in known:
            raise ConfigError(f"--actor {key}={name}: no shot, event or clip {key!r} in the cut")


def _refusal(clip: CutClip, reason: str) -> dict[str, Any]:
    return {"event": clip.event, "clip": clip.name, "index": clip.index, "reason": reason}


def _dubs(
    clip: CutClip,
    sid: str,
    timeline: otio.schema.Timeline,
    options: ImportOptions,
    finder: MediaFinder,
    base: Path,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The shot's dubs, and a note for each dub that has no audio for it."""
    dubs: list[dict[str, Any]] = []
    missing: list[str] = []
    fields = {"id": sid, "event": clip.event, "clip": clip.name, "reel": clip.reel or ""}
    assert clip.info is not None
    # A clip's own dub starts at its record in point, which is `head` frames into the shot.
    at_cut = 0.0 if options.dub_preroll else round(float(clip.head / clip.info.fps), 6)
    for name, pattern in options.dubs:
        path = Path(pattern.format(**fields))
        if path.is_file():
            dub: dict[str, Any] = {"name": name, "audio": _relative(path, base)}
            if at_cut:
                dub["offset"] = at_cut
            dubs.append(dub)
        else:
            missing.append(f"dub {name}: {path} does not exist")
    for name, which in options.dub_tracks:
        found = _track_dub(clip, timeline, audio_track(timeline, which), finder)
        if isinstance(found, str):
            missing.append(f"dub {name} (track {which}): {found}")
        else:
            path, offset = found
            dubs.append({"name": name, "audio": _relative(path, base), "offset": offset})
    return dubs, missing


def _track_dub(
    clip: CutClip, timeline: otio.schema.Timeline, track: otio.schema.Track, finder: MediaFinder
) -> tuple[Path, float] | str:
    """The audio clip of ``track`` under the clip's record in point, and the offset that lines its
    file up with the shot (seconds; negative: the file starts before the shot)."""
    shot_start = clip.record[0] - clip.head
    for item in track:
        if not isinstance(item, otio.schema.Clip):
            continue
        rec_in, rec_out = record_range(timeline, item)
        if not rec_in <= clip.record[0] < rec_out:
            continue
        path, how = finder.find(item)
        if path is None:
            return f"audio clip {item.name!r}: {how}"
        rng = item.trimmed_range()
        avail = getattr(item.media_reference, "available_range", None)
        origin = avail.start_time.to_seconds() if avail is not None else 0.0
        into_file = rng.start_time.to_seconds() - origin
        offset = float((rec_in - shot_start) / clip.rate) - into_file
        return path, round(offset, 6)
    return "no audio clip under the clip's record in point"


def _shot(
    clip: CutClip,
    sid: str,
    dubs: list[dict[str, Any]],
    actors: tuple[tuple[str | None, str], ...],
    base: Path,
) -> dict[str, Any]:
    assert clip.media is not None
    first, last = clip.frames
    keys = {sid, str(clip.event), clip.name}
    names = [name for key, name in actors if key is None or key in keys]
    shot: dict[str, Any] = {
        "id": sid,
        "source": _relative(clip.media, base),
        "in": clip.timecode(first),
        "out": clip.timecode(last),
    }
    if names:
        shot["actors"] = names
    shot["dubs"] = dubs
    shot["timeline"] = {
        "index": clip.index,
        "event": clip.event,
        "clip": clip.name,
        "reel": clip.reel,
        "record_in": format_timecode(clip.record[0], clip.rate),
        "record_out": format_timecode(clip.record[1], clip.rate),
        "source_in": clip.timecode(clip.source[0]),
        "source_out": clip.timecode(clip.source[1]),
        "head": clip.head,
        "tail": clip.tail,
    }
    return shot


def _relative(path: Path, base: Path) -> str:
    return os.path.relpath(path.resolve(), base.resolve())
