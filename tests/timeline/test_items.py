"""What the import makes of timeline items a shot list has no word for: black, a nested
sequence, a freeze frame, and a clip played at a rate its media does not run at."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest
from opentimelineio.opentime import RationalTime, TimeRange

from lipdub.errors import ConfigError
from lipdub.timeline.items import read_track
from lipdub.timeline.media import VIDEO_SUFFIXES, MediaFinder
from tests.conftest import make_video


def _clip(name: str, url: str, start: int, frames: int, rate: float = 25) -> otio.schema.Clip:
    return otio.schema.Clip(
        name=name,
        media_reference=otio.schema.ExternalReference(target_url=url),
        source_range=TimeRange(RationalTime(start, rate), RationalTime(frames, rate)),
    )


def test_black_nested_freeze_and_rate_mismatch_are_each_named(tmp_path: Path):
    make_video(tmp_path / "a.mov", 100, Fraction(25))
    timeline = otio.schema.Timeline("t")
    track = otio.schema.Track("V1")
    timeline.tracks.append(track)
    track.append(_clip("good", "a.mov", 10, 20))
    black = otio.schema.Clip(
        name="slug",
        media_reference=otio.schema.GeneratorReference(generator_kind="black"),
        source_range=TimeRange(RationalTime(0, 25), RationalTime(10, 25)),
    )
    track.append(black)
    nested = otio.schema.Stack(name="montage")
    inner = otio.schema.Track("inner")
    inner.append(_clip("inside", "a.mov", 0, 10))
    nested.append(inner)
    track.append(nested)
    frozen = _clip("held", "a.mov", 30, 10)
    frozen.effects.append(otio.schema.FreezeFrame())
    track.append(frozen)
    track.append(_clip("film", "a.mov", 0, 10, rate=24))

    reading = read_track(timeline, track, MediaFinder(tmp_path, (), VIDEO_SUFFIXES))

    by_name = {c.name: c for c in reading.clips}
    assert by_name["good"].problem is None and by_name["good"].source == (10, 30)
    assert by_name["good"].event == 1
    assert "freeze frame" in (by_name["held"].problem or "")
    assert by_name["held"].event == 3  # Black counts as an event (it is one in an EDL).
    assert "runs at 25.000 fps" in (by_name["film"].problem or "")
    assert "slug" not in by_name and "inside" not in by_name
    assert any("'slug'" in s and "black" in s for s in reading.skipped)
    assert any("'montage'" in s and "nested stack" in s for s in reading.skipped)


def test_a_clip_with_no_range_anywhere_is_an_error_naming_it(tmp_path: Path):
    timeline = otio.schema.Timeline("t")
    track = otio.schema.Track("V1")
    timeline.tracks.append(track)
    track.append(_clip("good", "a.mov", 0, 10))
    track.append(  # Neither a source range nor a known extent of its media.
        otio.schema.Clip(
            name="open", media_reference=otio.schema.ExternalReference(target_url="b.mov")
        )
    )
    make_video(tmp_path / "a.mov", 20, Fraction(25))
    with pytest.raises(ConfigError, match=r"event 2 \(clip 'open'\) has no length"):
        read_track(timeline, track, MediaFinder(tmp_path, (), VIDEO_SUFFIXES))
