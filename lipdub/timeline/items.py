"""The clips of one video track as shot candidates, each with its media, source frames, record
position and handles, or the reason it cannot be dubbed.

What a timeline can hold that a shot list cannot is decided here, per clip, and never silently:
a dissolve widens the clips on both sides by the frames it needs; a speed change or a freeze
frame, missing media, or a source range outside the media makes the clip a refusal (named by
event and clip, the rest of the cut goes on); gaps, generators (black, bars) and nested
sequences are skipped with a note.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from lipdub.config.timecode import file_timecode, start_frame
from lipdub.errors import ConfigError, MediaError
from lipdub.media.read import VideoInfo, probe
from lipdub.timeline.cut import editorial_rate, record_range
from lipdub.timeline.media import MediaFinder, reel_of


@dataclass(frozen=True)
class CutClip:
    """One clip of the track, as a shot would take it (or why it cannot)."""

    index: int  # Position among the track's children (gaps and transitions count).
    event: int  # 1-based number among the track's clips: the EDL's event number.
    name: str  # The clip's name in the cut.
    reel: str | None  # Reel / tape name, where the cut has one.
    record: tuple[int, int]  # Record in and out (exclusive), frames of the timeline's timecode.
    rate: Fraction  # The timeline's rate at this clip.
    media: Path | None = None  # The file it plays.
    info: VideoInfo | None = None  # That file, probed.
    source: tuple[int, int] = (0, 0)  # Frames of the media it shows (0 = the file's first).
    head: int = 0  # Frames rendered before ``source``: handles and what a dissolve needs.
    tail: int = 0  # Frames rendered after ``source``.
    problem: str | None = None  # Why it cannot be a shot (None: it can).
    notes: tuple[str, ...] = ()  # What was decided for it (handles shortened, effects ignored).

    @property
    def label(self) -> str:
        """How messages name it: ``event 3 (clip 'sh030')``."""
        return f"event {self.event} (clip {self.name!r})"

    @property
    def frames(self) -> tuple[int, int]:
        """The media frames to render: the source range widened by the handles."""
        return self.source[0] - self.head, self.source[1] + self.tail

    def timecode(self, frame: int) -> str:
        """Label of media ``frame`` in the media's own timecode (its start TC + ``frame``)."""
        assert self.info is not None
        return file_timecode(frame, self.info.fps, self.info.start_timecode)


@dataclass(frozen=True)
class TrackReading:
    """Every clip of the track, and what was skipped (gaps, generators, nested sequences)."""

    clips: tuple[CutClip, ...]
    skipped: tuple[str, ...]


def read_track(
    timeline: otio.schema.Timeline,
    track: otio.schema.Track,
    finder: MediaFinder,
    handles: int = 0,
) -> TrackReading:
    """The track's clips as shot candidates, with ``handles`` extra frames each side where the
    media has them (fewer, with a note, where it does not)."""
    _check_ranges(track)
    clips: list[CutClip] = []
    skipped: list[str] = []
    probed: dict[Path, VideoInfo | str] = {}
    gaps = events = 0
    for index, item in enumerate(track):
        if isinstance(item, otio.schema.Gap):
            gaps += 1
        elif isinstance(item, otio.schema.Transition):
            continue  # Its frames are asked of the clips beside it (handles_of_child).
        elif isinstance(item, otio.schema.Clip):
            events += 1
            if isinstance(item.media_reference, otio.schema.GeneratorReference):
                kind = item.media_reference.generator_kind or "generator"
                skipped.append(f"event {events} ({item.name!r}): {kind}, no picture to dub")
                continue
            clips.append(_clip(timeline, track, item, index, events, finder, handles, probed))
        else:  # A nested Stack or Track.
            what = type(item).__name__.lower()
            skipped.append(
                f"item {index + 1} ({item.name!r}): a nested {what}, skipped; flatten it in the "
                "editor to dub its clips"
            )
    if gaps:
        skipped.append(f"{gaps} gap{'s' * (gaps > 1)} (no picture), skipped")
    return TrackReading(tuple(clips), tuple(skipped))


def _check_ranges(track: otio.schema.Track) -> None:
    """Every clip must have a length (its source range, or its media's known extent): one that
    has none leaves the place of every clip after it unknown, so the cut cannot be read.

    Raises:
        ConfigError: naming the first such clip by event and name.
    """
    clips = [item for item in track if isinstance(item, otio.schema.Clip)]
    for event, clip in enumerate(clips, 1):
        try:
            clip.trimmed_range()
        except otio.exceptions.OTIOError as exc:
            raise ConfigError(
                f"event {event} (clip {clip.name!r}) has no length: neither a source range nor "
                f"a known extent of its media ({exc}); the cut is incomplete"
            ) from None


def _bare(
    timeline: otio.schema.Timeline, clip: otio.schema.Clip, index: int, event: int
) -> CutClip:
    return CutClip(
        index=index,
        event=event,
        name=clip.name or f"event {event}",
        reel=reel_of(clip),
        record=record_range(timeline, clip),
        rate=editorial_rate(clip.trimmed_range().duration.rate),
    )


def _clip(
    timeline: otio.schema.Timeline,
    track: otio.schema.Track,
    clip: otio.schema.Clip,
    index: int,
    event: int,
    finder: MediaFinder,
    handles: int,
    probed: dict[Path, VideoInfo | str],
) -> CutClip:
    bare = _bare(timeline, clip, index, event)

    def refused(reason: str) -> CutClip:
        return replace(bare, problem=reason)

    speed = _speed_problem(clip)
    if speed:
        return refused(speed)
    media, how = finder.find(clip, lambda path: _holds(_probed(path, probed), clip))
    if media is None:
        return refused(how)
    info = _probed(media, probed)
    if isinstance(info, str):
        return refused(info)
    if not _same_rate(bare.rate, info.fps):
        return refused(
            f"the cut plays it at {float(bare.rate):.3f} fps, its media {media.name} runs at "
            f"{float(info.fps):.3f} fps"
        )
    source = _source(clip, info)
    found = replace(bare, media=media, info=info, source=source)
    if not _inside(source, info):
        label = "its start timecode " + (info.start_timecode or "(none: 00:00:00:00)")
        return refused(
            f"source {found.timecode(source[0])}-{found.timecode(source[1])} lies outside its "
            f"media {media.name} ({info.frame_count} frames from {label})"
        )
    head, tail = track.handles_of_child(clip)  # The dissolves' (in, out) halves, or None.
    return _handles(found, head, tail, handles)


def _probed(path: Path, cache: dict[Path, VideoInfo | str]) -> VideoInfo | str:
    """``path``'s VideoInfo, or why it cannot be read (each file probed once per import)."""
    if path not in cache:
        try:
            cache[path] = probe(path)
        except MediaError as exc:
            cache[path] = str(exc)
    return cache[path]


def _holds(info: VideoInfo | str, clip: otio.schema.Clip) -> bool:
    """True when the file runs at the clip's rate and its timecode covers the clip's source."""
    if isinstance(info, str):
        return False
    rate = clip.trimmed_range().start_time.rate
    return _same_rate(rate, info.fps) and _inside(_source(clip, info), info)


def _source(clip: otio.schema.Clip, info: VideoInfo) -> tuple[int, int]:
    """The frames of the file ``clip`` shows (0 = the file's first): its source range, which
    the cut gives in the file's own timecode."""
    rng = clip.trimmed_range()
    start = round(rng.start_time.value) - start_frame(info.start_timecode, info.fps)
    return start, start + round(rng.duration.value)


def _same_rate(a: float | Fraction, b: Fraction) -> bool:
    """Within 0.005 fps: OTIO keeps rates as floats (29.97 for 30000/1001)."""
    return abs(float(a) - float(b)) <= 0.005


def _inside(source: tuple[int, int], info: VideoInfo) -> bool:
    return source[0] >= 0 and source[1] <= info.frame_count


def _speed_problem(clip: otio.schema.Clip) -> str | None:
    for effect in clip.effects:
        if isinstance(effect, otio.schema.FreezeFrame):
            return "a freeze frame: the mouth cannot follow the dub on a held picture"
        scalar = _time_scalar(effect)
        if scalar is not None and scalar != 1:
            return (
                f"a speed change ({scalar * 100:.0f} %): render the clip at speed and retime it "
                "in the editor"
            )
    return None


def _time_scalar(effect: otio.schema.Effect) -> float | None:
    """The speed an effect plays its clip at (1 = as shot; None: not a retime). OTIO's
    LinearTimeWarp, or FCP XML's "Time Remap" filter, which otio-fcp-adapter reads as a plain
    effect with its parameters in metadata (speed in percent; unreadable counts as a change)."""
    if isinstance(effect, otio.schema.LinearTimeWarp):
        return effect.time_scalar
    fcp = effect.metadata.get("fcp_xml", {})
    if "timeremap" not in (
        str(fcp.get("effectid", "")).lower(),
        effect.name.lower().replace(" ", ""),
    ):
        return None
    params = fcp.get("parameter", [])  # One parameter reads as a mapping, several as a list.
    for param in [params] if hasattr(params, "get") else list(params):
        if hasattr(param, "get") and param.get("parameterid") == "speed":
            try:
                return float(param.get("value")) / 100
            except (TypeError, ValueError):
                break
    return 0.0


def _handles(
    clip: CutClip,
    head_rt: otio.opentime.RationalTime | None,
    tail_rt: otio.opentime.RationalTime | None,
    extra: int,
) -> CutClip:
    """Widen the clip by what its dissolves need (the media must have it) and by ``extra``
    handle frames (as many as the media has)."""
    assert clip.info is not None
    need_head = round(head_rt.value) if head_rt is not None else 0
    need_tail = round(tail_rt.value) if tail_rt is not None else 0
    before, after = clip.source[0], clip.info.frame_count - clip.source[1]
    if need_head > before or need_tail > after:
        side, need, has = (
            ("before its in point", need_head, before)
            if need_head > before
            else ("after its out point", need_tail, after)
        )
        return replace(
            clip,
            problem=f"its dissolve needs {need} frames {side}; its media has {has} there",
        )
    head, tail = max(need_head, extra), max(need_tail, extra)
    notes = []
    if head > before or tail > after:
        notes.append(
            f"handles shortened to the media: {min(head, before)} before, {min(tail, after)} "
            f"after (asked {extra})"
        )
    return replace(clip, head=min(head, before), tail=min(tail, after), notes=tuple(notes))
