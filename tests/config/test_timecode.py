"""SMPTE timecode, drop-frame included."""

from fractions import Fraction

import pytest

from lipdub.config.timecode import TimecodeError, format_timecode, parse_timecode

NTSC = Fraction(30000, 1001)


@pytest.mark.parametrize(
    ("tc", "frame"),
    [
        ("00:00:00;00", 0),
        ("00:00:59;29", 1799),
        ("00:01:00;02", 1800),
        ("00:10:00;00", 17982),
        ("01:00:00;00", 107892),
    ],
)
def test_drop_frame_labels(tc: str, frame: int):
    assert parse_timecode(tc, NTSC) == frame
    assert format_timecode(frame, NTSC) == tc


def test_non_drop_and_round_trips():
    assert parse_timecode("01:00:00:00", Fraction(25)) == 90000
    assert parse_timecode("01:00:00:00", NTSC) == 108000  # NDF label at 29.97.
    for fps in (NTSC, Fraction(60000, 1001), Fraction(25), Fraction(24000, 1001)):
        for n in range(0, 250_000, 997):
            assert parse_timecode(format_timecode(n, fps), fps) == n


@pytest.mark.parametrize(
    ("tc", "fps", "message"),
    [
        ("00:01:00;00", NTSC, "does not exist"),
        ("00:00:00;00", Fraction(25), "no drop-frame"),
        ("00:00:00:25", Fraction(25), "out of range"),
        ("1:2:3", Fraction(25), "not a timecode"),
    ],
)
def test_bad_timecodes(tc: str, fps: Fraction, message: str):
    with pytest.raises(TimecodeError, match=message):
        parse_timecode(tc, fps)


def test_shot_labels_follow_the_source_timecode_style():
    from pathlib import Path

    from lipdub.config.settings import Settings
    from lipdub.config.shots import Shot

    def shot(tc):
        return Shot(
            id="s",
            source=Path("x.mov"),
            start=0,
            stop=10,
            fps=NTSC,
            actors=(),
            dubs=(),
            settings=Settings(),
            start_timecode=tc,
        )

    assert shot("01:00:00:00").timecode_at(1800) == "01:01:00:00"  # NDF source stays NDF.
    assert shot("01:00:00;00").timecode_at(1800) == "01:01:00;02"  # DF source stays DF.
    assert shot(None).timecode_at(1800) == "00:01:00;02"  # No TC: the rate's default style.
