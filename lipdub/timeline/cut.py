"""Reading and writing an editor's cut through OpenTimelineIO and its adapter plugins.

The file's suffix picks the adapter: ``.otio`` (OTIO's own JSON), ``.edl`` (CMX 3600, from
``otio-cmx3600-adapter``) and ``.xml`` (Final Cut Pro 7 / Premiere XML, from ``otio-fcp-adapter``).
An EDL does not say its frame rate, so it is read at the rate the caller gives.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio

from lipdub.errors import ConfigError
from lipdub.media.atomic import atomic_output

#: Suffix -> OTIO adapter name.
ADAPTERS = {".otio": "otio_json", ".edl": "cmx_3600", ".xml": "fcp_xml"}
#: The frame rates an editor's timecode can run at (23.976 ... 59.94), exact.
EDITORIAL_RATES = tuple(
    Fraction(n, d)
    for n, d in ((24000, 1001), (24, 1), (25, 1), (30000, 1001), (30, 1), (50, 1), (60000, 1001))
)
# otio-cmx3600-adapter 1.0 matches an M2 (speed) line's timecode with [0-9:] only, so a
# drop-frame label (";") makes it fail on the whole file; the M2 timecode is not otherwise used.
_M2_DROP = re.compile(r"^(M2\s.*\d\d:\d\d:\d\d);(\d\d)\s*$")


# Lines of an EDL that the CMX 3600 reader reads or knows: the title, the frame-code mode, events
# (an event number), comments (``*``), speed (M2), split edits, and the notes some editors add.
_EDL_KNOWN = re.compile(
    r"^(TITLE:|FCM:|SPLIT:|M2\s|\*|>>>|AUD\s|EFFECTS NAME|FINAL CUT PRO REEL|\d)", re.IGNORECASE
)


def unread_edl_lines(path: Path) -> list[str]:
    """The lines of the EDL at ``path`` that the reader drops without a word (it takes any line
    after an event for a comment), each as ``NAME:LINE: ...``, so an import can report them."""
    return [
        f"{path.name}:{n}: not an EDL line, ignored: {line.strip()!r}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if line.strip() and not _EDL_KNOWN.match(line.strip())
    ]


def _with_fcm(text: str) -> str:
    """The EDL ``text`` with its frame-code mode line after the title (the writer leaves it out;
    an editor's system reads the record timecodes by it): DROP FRAME where they are drop-frame
    labels (``;``), else NON-DROP FRAME."""
    lines = text.splitlines()
    if any(line.startswith("FCM:") for line in lines):
        return text
    events = [line for line in lines if line[:1].isdigit()]
    mode = "DROP FRAME" if any(";" in line for line in events) else "NON-DROP FRAME"
    at = 1 if lines and lines[0].startswith("TITLE:") else 0
    return "\n".join([*lines[:at], f"FCM: {mode}", *lines[at:]]) + "\n"


def adapter_for(path: Path) -> str:
    """The OTIO adapter for ``path``'s suffix.

    Raises:
        ConfigError: a suffix no adapter reads or writes.
    """
    adapter = ADAPTERS.get(path.suffix.lower())
    if adapter is None:
        raise ConfigError(
            f"{path}: not a cut lipdub reads or writes (suffixes: {', '.join(ADAPTERS)})"
        )
    return adapter


def parse_rate(text: str) -> Fraction:
    """An editorial rate given as ``23.976``, ``29.97``, ``25`` or ``30000/1001``.

    Raises:
        ConfigError: not one of :data:`EDITORIAL_RATES`.
    """
    try:
        value = float(Fraction(text)) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        value = 0.0
    rate = snap_rate(value)
    if rate is not None:
        return rate
    known = ", ".join(f"{float(r):.3f}".rstrip("0").rstrip(".") for r in EDITORIAL_RATES)
    raise ConfigError(f"frame rate {text!r} is not an editorial rate ({known})")


def snap_rate(value: float) -> Fraction | None:
    """The editorial rate ``value`` stands for (OTIO keeps 29.97 as a float), or None."""
    for rate in EDITORIAL_RATES:
        if abs(float(rate) - value) < 0.005:
            return rate
    return None


def editorial_rate(value: float) -> Fraction:
    """A rate as OTIO holds it (a float), as the exact rate it stands for: an editorial rate
    (29.97 is 30000/1001), else the nearest fraction over at most 1001."""
    return snap_rate(value) or Fraction(value).limit_denominator(1001)


def read_cut(path: Path, rate: Fraction | None = None) -> otio.schema.Timeline:
    """The timeline in ``path``; an EDL is read at ``rate`` (required for one).

    Raises:
        ConfigError: missing file, unknown suffix, an EDL without a rate, or a file the adapter
            cannot read (the adapter's message, with the file name).
    """
    adapter = adapter_for(path)
    if not path.is_file():
        raise ConfigError(f"{path}: the cut does not exist")
    try:
        if adapter == "cmx_3600":
            if rate is None:
                raise ConfigError(f"{path}: an EDL does not say its frame rate; give --rate")
            text = "\n".join(_M2_DROP.sub(r"\1:\2", line) for line in path.read_text().splitlines())
            result = otio.adapters.read_from_string(text, adapter, rate=float(rate))
        else:
            result = otio.adapters.read_from_file(str(path), adapter)
    except ConfigError:
        raise
    except Exception as exc:  # Adapters raise their own types, and sometimes plain errors.
        raise ConfigError(f"{path}: cannot read the cut: {type(exc).__name__}: {exc}") from None
    if isinstance(result, otio.schema.SerializableCollection):
        timelines = list(result.find_children(descended_from_type=otio.schema.Timeline))
        if len(timelines) != 1:
            raise ConfigError(f"{path}: holds {len(timelines)} sequences; export the one to dub")
        result = timelines[0]
    if not isinstance(result, otio.schema.Timeline):
        raise ConfigError(f"{path}: holds a {type(result).__name__}, not a timeline")
    return result


def write_cut(timeline: otio.schema.Timeline, path: Path, rate: Fraction) -> None:
    """Write ``timeline`` to ``path`` with the adapter its suffix names (EDL at ``rate``, with
    full-length reel names so that every dubbed file keeps a distinct reel)."""
    adapter = adapter_for(path)
    timeline = timeline.deepcopy()  # The fixes below are for the writer only.
    if adapter == "cmx_3600":
        _start_records_at_global_start(timeline)
        text = otio.adapters.write_to_string(timeline, adapter, rate=float(rate), reelname_len=None)
        text = _with_fcm(text)
    else:
        _global_start_from_track_offset(timeline)
        if adapter == "fcp_xml":
            _fill_available_ranges(timeline)
        text = otio.adapters.write_to_string(timeline, adapter)
    with atomic_output(path) as partial:
        partial.write_text(text)


def _start_records_at_global_start(timeline: otio.schema.Timeline) -> None:
    """otio-cmx3600-adapter writes record timecode from the track's own start and ignores the
    timeline's start timecode (a cut from OTIO or XML starting at 01:00:00:00 would come out at
    00:00:00:00); a track offset by the start timecode is what it reads and writes."""
    start = timeline.global_start_time
    if start is None or start.value == 0:
        return
    for track in timeline.video_tracks():
        if track.source_range is None:
            track.source_range = otio.opentime.TimeRange(-start, track.duration())


def _global_start_from_track_offset(timeline: otio.schema.Timeline) -> None:
    """The reverse for a cut read from an EDL (its first record timecode is an offset on the
    track, which FCP XML and OTIO readers do not take as the sequence's start): make it the
    timeline's start timecode."""
    tracks = list(timeline.video_tracks())
    offsets = [t.source_range.start_time for t in tracks if t.source_range is not None]
    if timeline.global_start_time is not None or len(offsets) != len(tracks) or not offsets:
        return
    start = offsets[0]
    if start.value >= 0 or any(o != start for o in offsets):
        return
    timeline.global_start_time = -start
    for track in tracks:
        track.source_range = None


def _fill_available_ranges(timeline: otio.schema.Timeline) -> None:
    """FCP XML needs every file's extent (otio-fcp-adapter fails without one): where a media
    reference has none (as read from an EDL), the clip's own source range stands in for it."""
    for clip in timeline.find_clips():
        ref = clip.media_reference
        if isinstance(ref, otio.schema.ExternalReference) and ref.available_range is None:
            ref.available_range = clip.trimmed_range()


def video_track(timeline: otio.schema.Timeline, which: str | None) -> tuple[int, otio.schema.Track]:
    """The video track ``which`` names: its 1-based number (``2``, ``V2``), its name, or the
    first one when None; returned with its 0-based index among the video tracks.

    Raises:
        ConfigError: no video track, or none matching ``which`` (the known ones listed).
    """
    tracks = list(timeline.video_tracks())
    if not tracks:
        raise ConfigError(f"timeline {timeline.name!r} has no video track")
    return (0, tracks[0]) if which is None else _pick(tracks, which, "V", "video")


def audio_track(timeline: otio.schema.Timeline, which: str) -> otio.schema.Track:
    """The audio track ``which`` names: its 1-based number (``A2``) or its name.

    Raises:
        ConfigError: none matches (the known ones listed).
    """
    return _pick(list(timeline.audio_tracks()), which, "A", "audio")[1]


def _pick(
    tracks: list[otio.schema.Track], which: str, letter: str, kind: str
) -> tuple[int, otio.schema.Track]:
    number = which[1:] if which[:1].upper() == letter and which[1:].isdigit() else which
    if number.isdigit() and 1 <= int(number) <= len(tracks):
        return int(number) - 1, tracks[int(number) - 1]
    for i, track in enumerate(tracks):
        if track.name == which:
            return i, track
    names = ", ".join(
        f"{letter}{i + 1}" + (f" ({t.name})" * bool(t.name)) for i, t in enumerate(tracks)
    )
    raise ConfigError(f"no {kind} track {which!r} in the cut (tracks: {names or 'none'})")


def record_range(timeline: otio.schema.Timeline, item: otio.core.Item) -> tuple[int, int]:
    """Record in and out (exclusive) of ``item`` as frames of the timeline's timecode: where the
    item sits in the cut, with the timeline's (or the EDL's first event's) start included."""
    rng = item.transformed_time_range(item.trimmed_range(), timeline.tracks)
    rate = rng.start_time.rate
    start = round(rng.start_time.value)
    if timeline.global_start_time is not None:
        start += round(timeline.global_start_time.rescaled_to(rate).value)
    return start, start + round(rng.duration.value)
