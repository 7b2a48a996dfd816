"""``lipdub render --timeline-out``: the cut again, with every dubbed shot relinked.

One timeline per dub (language): the cut the shots were imported from, read again (it must be
unchanged since the import), where each clip whose shot rendered now plays the dubbed file at
the same record position, length and source timecode; every other clip keeps its original
media and carries a red marker saying why it was not dubbed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import opentimelineio as otio

from lipdub.config.shots import Dub, Shot
from lipdub.config.timecode import start_frame
from lipdub.errors import ConfigError
from lipdub.timeline.cut import (
    adapter_for,
    editorial_rate,
    parse_rate,
    read_cut,
    video_track,
    write_cut,
)

#: Metadata namespace lipdub writes on relinked clips.
META = "lipdub"


def cut_of(timeline: Mapping[str, Any] | None, shots_file: Path | None) -> Path:
    """The cut a shots file was imported from, checked unchanged since the import.

    Raises:
        ConfigError: the shots file was not imported from a cut, or the cut is gone or changed.
    """
    if not timeline or shots_file is None or "file" not in timeline:
        raise ConfigError(
            "--timeline-out needs a shots file imported from a cut (`lipdub shots import`)"
        )
    cut = shots_file.resolve().parent / str(timeline["file"])
    if not cut.is_file():
        raise ConfigError(f"{shots_file}: the cut it was imported from, {cut}, is gone")
    if hashlib.sha256(cut.read_bytes()).hexdigest() != timeline.get("sha256"):
        raise ConfigError(
            f"{shots_file}: {cut} changed since the shots were imported; import it again"
        )
    return cut


def timeline_paths(out: Path, dubs: Sequence[str]) -> dict[str, Path]:
    """Dub name -> the timeline written for it: ``{dub}`` in ``out`` replaced by the name, or,
    with several dubs and no ``{dub}``, the name added before the suffix (``cut_de.otio``).

    Raises:
        ConfigError: ``out``'s suffix is not a cut format.
    """
    adapter_for(out)
    if "{dub}" in str(out):
        return {d: Path(str(out).replace("{dub}", d)) for d in dubs}
    if len(dubs) == 1:
        return {dubs[0]: out}
    return {d: out.with_name(f"{out.stem}_{d}{out.suffix}") for d in dubs}


def export_cut(
    timeline_meta: Mapping[str, Any],
    shots_file: Path,
    shots: Sequence[Shot],
    failed: Mapping[str, str],
    out: Path,
) -> dict[str, Path]:
    """Write one relinked cut per dub; returns dub name -> file written.

    Arguments:
        timeline_meta: the shots file's ``timeline:`` block.
        shots_file: the shots file (its folder anchors the cut's path).
        shots: every shot of the plan (also those not rendered in this run: their outputs are
            linked where they exist).
        failed: shot id -> why its render failed in this run.
        out: where to write (see :func:`timeline_paths`).
    """
    cut = cut_of(timeline_meta, shots_file)
    rate = parse_rate(str(timeline_meta["rate"])) if timeline_meta.get("rate") else None
    names = list(dict.fromkeys(d.name for s in shots for d in s.dubs))
    by_index = {int(s.timeline["index"]): s for s in shots if s.timeline}
    refused = {int(r["index"]): str(r["reason"]) for r in timeline_meta.get("refused") or []}
    original = read_cut(cut, rate)
    written = {}
    for name, path in timeline_paths(out, names).items():
        cut_timeline = original.deepcopy()  # Each dub relinks its own copy.
        _, track = video_track(cut_timeline, str(timeline_meta.get("track", 1)))
        for index, item in enumerate(track):
            if not isinstance(item, otio.schema.Clip):
                continue
            shot = by_index.get(index)
            why = refused.get(index) if shot is None else _why_not(shot, name, failed, item)
            if shot is not None and why is None:
                _relink(item, shot, next(d for d in shot.dubs if d.name == name))
            elif why is not None:
                _mark(item, f"lipdub: not dubbed ({name}): {why}")
        write_cut(cut_timeline, path, rate or editorial_rate(track.duration().rate))
        written[name] = path
    return written


def _why_not(shot: Shot, dub: str, failed: Mapping[str, str], clip: otio.schema.Clip) -> str | None:
    """Why ``clip`` cannot play ``shot``'s ``dub`` output (None: it can)."""
    shown = clip.trimmed_range()
    first = _source_frame(shot, shown.start_time.value)
    if first < shot.start or first + round(shown.duration.value) > shot.stop:
        return (
            f"shot {shot.id} no longer covers the clip (its in/out were changed after the "
            "import; import the cut again)"
        )
    if shot.id in failed:
        return f"shot {shot.id} failed: {failed[shot.id]}"
    output = next((d.output for d in shot.dubs if d.name == dub), None)
    if output is None:
        return f"shot {shot.id} has no {dub!r} dub"
    if not output.is_file():
        return f"shot {shot.id} is not rendered ({output.name} does not exist)"
    return None


def _relink(clip: otio.schema.Clip, shot: Shot, dub: Dub) -> None:
    """Point ``clip`` at the dubbed file. The file starts at the shot's first frame and carries
    the source's timecode there (or 00:00:00:00 when the source has none), so the clip's source
    range moves by that much and its record position and length stay."""
    shown = clip.trimmed_range()
    rate = shown.start_time.rate
    tc = shot.start_timecode
    output_origin = start_frame(tc, shot.fps) + shot.start if tc else 0
    first = _source_frame(shot, shown.start_time.value) - shot.start + output_origin
    clip.source_range = otio.opentime.TimeRange(
        otio.opentime.RationalTime(first, rate), shown.duration
    )
    clip.media_reference = otio.schema.ExternalReference(
        target_url=dub.output.resolve().as_uri(),
        available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(output_origin, rate),
            otio.opentime.RationalTime(shot.frame_count, rate),
        ),
    )
    clip.media_reference.name = dub.output.name
    cmx = dict(clip.metadata.get("cmx_3600", {}))
    cmx["reel"] = dub.output.stem
    cmx.pop("comments", None)  # The original's "TO CLIP:" line would name the old file.
    clip.metadata["cmx_3600"] = cmx
    clip.metadata[META] = {"shot": shot.id, "dub": dub.name, "source": str(shot.source)}


def _source_frame(shot: Shot, value: float) -> int:
    """A clip's source time (in its media's own timecode, as the cut holds it) as a frame of
    the shot's source file (0 = its first)."""
    return round(value) - start_frame(shot.start_timecode, shot.fps)


def _mark(clip: otio.schema.Clip, text: str) -> None:
    shown = clip.trimmed_range()
    clip.markers.append(
        otio.schema.Marker(
            name=text,
            marked_range=otio.opentime.TimeRange(
                shown.start_time, otio.opentime.RationalTime(0, shown.start_time.rate)
            ),
            color=otio.schema.MarkerColor.RED,
        )
    )
