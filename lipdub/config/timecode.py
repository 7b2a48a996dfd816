"""SMPTE timecode ⇄ frame numbers, including 29.97/59.94 drop-frame.

Drop-frame timecode skips the frame labels :00 and :01 (:00–:03 at 59.94) at the start of every
minute except each tenth minute, so that the labels keep pace with the wall clock at 30000/1001
fps. Labels use ``;`` (or ``.``) before the frames field when drop-frame, ``:`` otherwise.
"""

from __future__ import annotations

import re
from fractions import Fraction

_TC = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})([:;.,])(\d{2,3})$")


class TimecodeError(ValueError):
    """A timecode string is malformed or impossible at the given rate."""


def nominal_fps(fps: Fraction) -> int:
    """The integer label rate: 30 for 29.97, 24 for 23.976, 60 for 59.94."""
    return round(fps)


def is_drop_frame_rate(fps: Fraction) -> bool:
    """True for the NTSC rates that can use drop-frame labels (29.97, 59.94)."""
    return fps.denominator == 1001 and nominal_fps(fps) in (30, 60)


def parse_timecode(text: str, fps: Fraction) -> int:
    """Frame number of a timecode label at ``fps`` (00:00:00:00 is frame 0).

    Raises:
        TimecodeError: malformed, out of range, or a drop-frame label that does not exist.
    """
    m = _TC.match(text.strip())
    if not m:
        raise TimecodeError(f"{text!r} is not a timecode (HH:MM:SS:FF, or HH:MM:SS;FF drop-frame)")
    hh, mm, ss, sep, ff = int(m[1]), int(m[2]), int(m[3]), m[4], int(m[5])
    base = nominal_fps(fps)
    drop = sep in ";.,"
    if mm > 59 or ss > 59 or ff >= base:
        raise TimecodeError(f"{text!r} is out of range at {float(fps):.3f} fps")
    if drop and not is_drop_frame_rate(fps):
        raise TimecodeError(f"{text!r} is drop-frame, but {float(fps):.3f} fps has no drop-frame")
    frames = ((hh * 60 + mm) * 60 + ss) * base + ff
    if drop:
        dropped = base // 15  # 2 labels per minute at 29.97, 4 at 59.94.
        if ss == 0 and ff < dropped and mm % 10 != 0:
            raise TimecodeError(f"{text!r} does not exist in drop-frame timecode")
        total_minutes = hh * 60 + mm
        frames -= dropped * (total_minutes - total_minutes // 10)
    return frames


def start_frame(start_tc: str | None, fps: Fraction) -> int:
    """The frame count of a file's start timecode (0 for a file without one): a frame of the
    file plus this is its place on the timecode's count."""
    return parse_timecode(start_tc, fps) if start_tc else 0


def file_timecode(frame: int, fps: Fraction, start_tc: str | None) -> str:
    """Label of a file's ``frame`` (0 = its first): its start timecode plus ``frame``, in that
    timecode's own drop/non-drop style (from 00:00:00:00, in the rate's default, without one)."""
    drop = ";" in start_tc if start_tc else None
    return format_timecode(start_frame(start_tc, fps) + frame, fps, drop_frame=drop)


def format_timecode(frame: int, fps: Fraction, drop_frame: bool | None = None) -> str:
    """Timecode label of ``frame`` (drop-frame by default at 29.97/59.94)."""
    base = nominal_fps(fps)
    drop = is_drop_frame_rate(fps) if drop_frame is None else drop_frame
    if drop:
        dropped = base // 15
        per_10min = base * 600 - dropped * 9
        per_min = base * 60 - dropped
        tens, rem = divmod(frame, per_10min)
        if rem < dropped:
            rem = dropped  # Inside the first minute of a ten-minute block nothing is skipped.
        frame += dropped * 9 * tens + dropped * ((rem - dropped) // per_min)
    ff = frame % base
    total_s = frame // base
    sep = ";" if drop else ":"
    return f"{total_s // 3600:02d}:{total_s // 60 % 60:02d}:{total_s % 60:02d}{sep}{ff:02d}"
