"""Frame-exact decode and count/rate/size-preserving encode."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from lipdub.errors import MediaError
from lipdub.media.read import open_video, probe
from lipdub.media.write import CODECS, VideoWriter, codec_for
from tests.conftest import counter_frame, make_video, read_counter

RATES = [Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001)]


@pytest.mark.parametrize("fps", RATES, ids=["23.976", "25", "29.97"])
@pytest.mark.parametrize(("a", "b"), [(0, 5), (17, 29), (40, 60), (59, 60)])
def test_decode_range_returns_exactly_those_frames(tmp_path: Path, fps: Fraction, a: int, b: int):
    path = make_video(tmp_path / "c.mp4", 60, fps)
    with open_video(path) as src:
        assert src.info.fps == fps
        assert src.info.frame_count == 60
        got = [read_counter(f) for f in src.frames(a, b)]
    assert got == list(range(a, b))


@pytest.mark.parametrize("codec", ["h264", "prores_hq", "ffv1"])
@pytest.mark.parametrize("fps", RATES, ids=["23.976", "25", "29.97"])
def test_write_read_round_trip_keeps_count_rate_size(tmp_path: Path, codec: str, fps: Fraction):
    suffix = CODECS[codec].containers[0]
    path = make_video(tmp_path / f"rt{suffix}", 24, fps, codec=codec, size=(96, 64))
    info = probe(path)
    assert (info.frame_count, info.fps, info.width, info.height) == (24, fps, 96, 64)
    with open_video(path) as src:
        frames = list(src.frames())
    assert [read_counter(f) for f in frames] == list(range(24))
    if codec == "ffv1":  # Lossless: the decoded pixels are exactly what was written.
        assert all(np.array_equal(f, counter_frame(i, 96, 64)) for i, f in enumerate(frames))


def test_prores_is_422_hq_10bit_and_timecode_is_kept(tmp_path: Path):
    path = make_video(
        tmp_path / "p.mov", 10, Fraction(24000, 1001), "prores_hq", timecode="01:00:00:00"
    )
    info = probe(path)
    assert info.codec == "prores" and info.pix_fmt == "yuv422p10le"
    assert info.start_timecode == "01:00:00:00"
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.profile == "HQ"


def test_missing_and_corrupt_files_are_one_line_errors(tmp_path: Path):
    with pytest.raises(MediaError, match="no such file"):
        open_video(tmp_path / "nope.mov")
    junk = tmp_path / "junk.mov"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(MediaError, match=r"junk\.mov: not a readable video"):
        open_video(junk)


def test_truncated_file_is_refused_or_reports_the_missing_frames(tmp_path: Path):
    path = make_video(tmp_path / "t.mkv", 40, Fraction(25), codec="ffv1")
    data = path.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    try:
        with open_video(cut) as src:
            n = src.info.frame_count
            frames = list(src.frames())
    except MediaError as exc:
        assert "cut.mkv" in str(exc)
    else:  # The demuxer saw only the frames that survived: they must all decode, in order.
        assert 0 < n < 40 and len(frames) == n
        assert [read_counter(f) for f in frames] == list(range(n))


def _write_with_pts(path: Path, pts: list[int], rate: Fraction) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=rate)
        s.width, s.height, s.pix_fmt = 128, 96, "bgr0"
        for i, p in enumerate(pts):
            f = av.VideoFrame.from_ndarray(counter_frame(i), format="rgb24")
            f.pts, f.time_base = p, Fraction(1) / rate
            c.mux(s.encode(f))
        c.mux(s.encode(None))


def test_variable_frame_rate_is_refused_with_a_fix(tmp_path: Path):
    path = tmp_path / "vfr.mkv"
    # Frame durations alternate between 1 and 1.5 frames: not a constant-rate grid.
    _write_with_pts(path, [0, 2, 5, 7, 10, 12, 15, 17, 20, 22], Fraction(50))
    with pytest.raises(MediaError, match=r"variable frame rate.*conform"):
        open_video(path)


def test_a_few_missing_frames_are_filled_by_repeating(tmp_path: Path):
    path = tmp_path / "gap.mkv"
    pts = [p for p in range(0, 120) if p != 50]  # Frame 50 of 120 is missing.
    _write_with_pts(path, pts, Fraction(25))
    with open_video(path) as src:
        assert src.info.frame_count == 120 and src.info.filled_frames == 1
        got = [read_counter(f) for f in src.frames(48, 53)]
    # Counters are written in order of the frames present: the 50th slot repeats frame 49's.
    assert got == [48, 49, 49, 50, 51]


def test_codec_must_fit_the_container(tmp_path: Path):
    from lipdub.errors import ConfigError

    with pytest.raises(ConfigError, match=r"prores_hq.*\.mov"):
        codec_for("prores_hq", tmp_path / "x.mp4")


def test_a_file_is_scanned_once_per_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A render opens its source several times; the packet scan (which decodes the last group
    of pictures) runs once per file content, and again when the file changes."""
    import os

    from lipdub.media import read

    calls = []
    real = read.scan_packets
    monkeypatch.setattr(read, "scan_packets", lambda *a: calls.append(a[2]) or real(*a))
    path = make_video(tmp_path / "a.mkv", 12, Fraction(25), "ffv1")
    for _ in range(3):
        with open_video(path) as v:
            assert v.info.frame_count == 12
    assert len(calls) == 1
    make_video(path, 8, Fraction(25), "ffv1")  # Replaced: other size and time.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    with open_video(path) as v:
        assert v.info.frame_count == 8
    assert len(calls) == 2


def test_a_frame_written_after_close_is_refused_by_name(tmp_path: Path):
    path = tmp_path / "closed.mp4"
    writer = VideoWriter(path, 32, 32, Fraction(25), CODECS["h264"])
    writer.write(np.zeros((32, 32, 3), np.uint8))
    writer.close()
    writer.close()  # A second close is a no-op.
    with pytest.raises(ValueError, match=r"closed\.mp4: write\(\) after close\(\)"):
        writer.write(np.zeros((32, 32, 3), np.uint8))
    assert probe(path).frame_count == 1
