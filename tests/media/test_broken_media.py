"""A corpus of awkward and broken video files, made here in a temporary folder, and what the reader
does with each: the frames FFmpeg presents (checked against PyAV's own sequential decode and
OpenCV), or one precise error that names the file.

Edit-listed pre-roll, truncation at several points (index at the front and at the back), variable
frame rate (refused, and conformed on request), odd time bases, display-matrix rotation, 10-bit
pixel formats, no audio, one frame.
"""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from lipdub.errors import MediaError
from lipdub.media import packet_scan
from lipdub.media.audio import load_audio
from lipdub.media.read import open_video, probe
from tests.conftest import CELL, counter_frame, read_counter

WIDTH, HEIGHT = 128, 96


def _frame(i: int, noise: np.random.Generator | None = None) -> np.ndarray:
    """Counter frame ``i``; with ``noise``, hard-to-compress rows below the counter."""
    frame = counter_frame(i, WIDTH, HEIGHT)
    if noise is not None:
        frame[3 * CELL :] = noise.integers(0, 256, frame[3 * CELL :].shape, dtype=np.uint8)
    return frame


def _encode(
    path: Path,
    frames: int,
    rate: Fraction | int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    options: dict[str, str] | None = None,
    muxer: dict[str, str] | None = None,
    time_base: Fraction | None = None,
    rotation: int | None = None,
    matrix: list[int] | None = None,
    noise: bool = False,
) -> Path:
    """Write ``frames`` counter frames at ``rate`` (frame ``i`` at ``i / rate``)."""
    rng = np.random.default_rng(0) if noise else None
    with av.open(str(path), "w", options=muxer or {}) as c:
        s = c.add_stream(codec, rate=Fraction(rate))
        s.width, s.height, s.pix_fmt = WIDTH, HEIGHT, pix_fmt
        s.options = {"preset": "ultrafast", **(options or {})} if codec == "libx264" else {}
        if time_base is not None:
            s.time_base = time_base
        if rotation is not None:
            s.set_display_rotation(rotation)
        if matrix is not None:
            s.set_display_matrix(matrix)
        for i in range(frames):
            f = av.VideoFrame.from_ndarray(_frame(i, rng), format="rgb24")
            f.pts, f.time_base = i, 1 / Fraction(rate)
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path


def _write_with_pts(path: Path, pts: list[int], time_base: Fraction) -> Path:
    """Lossless frames ``0..len(pts)-1`` at the given timestamps (a variable-rate stream)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=1 / time_base)
        s.width, s.height, s.pix_fmt = WIDTH, HEIGHT, "bgr0"
        for i, p in enumerate(pts):
            f = av.VideoFrame.from_ndarray(counter_frame(i), format="rgb24")
            f.pts, f.time_base = p, time_base
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path


def _presented(path: Path) -> list[np.ndarray]:
    """Every frame FFmpeg presents, decoded in one pass (no seeking), as RGB."""
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def _says(path: Path, text: str) -> str:
    """A ``match`` pattern for a one-line error that starts with ``path: text``."""
    return "^" + re.escape(f"{path}: {text}")


def _opencv_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def _assert_reads_as_presented(path: Path) -> list[np.ndarray]:
    """The reader yields exactly the frames a plain decode presents, also from mid-file."""
    expected = _presented(path)
    with open_video(path) as src:
        assert src.info.frame_count == len(expected)
        got = list(src.frames())
        a, b = len(expected) // 3, len(expected) // 3 + 4
        middle = list(src.frames(a, b))
    assert all(np.array_equal(x, y) for x, y in zip(got, expected, strict=True))
    assert all(np.array_equal(x, y) for x, y in zip(middle, expected[a:b], strict=True))
    return got


# --- Edit lists -----------------------------------------------------------------------------


@pytest.mark.parametrize("hidden", [3, 57])
def test_edit_listed_preroll_is_hidden_as_every_player_hides_it(tmp_path: Path, hidden: int):
    """An MP4 trimmed without re-encoding keeps the pre-roll before its first frame, hidden by
    an edit list (negative timestamps): it reads as the frames after the trim, like FFmpeg and
    OpenCV show it (57 hidden frames used to be refused as 'frame 0 could not be decoded')."""
    src = _encode(tmp_path / "src.mp4", 120, 30, options={"g": "90", "bf": "2"})
    trimmed = tmp_path / "trimmed.mp4"
    with av.open(str(src)) as i, av.open(str(trimmed), "w") as o:
        ist = i.streams.video[0]
        ost = o.add_stream_from_template(ist)
        shift = int(Fraction(hidden, 30) / ist.time_base)
        for packet in i.demux(ist):
            if packet.dts is None:
                continue
            packet.pts, packet.dts, packet.stream = packet.pts - shift, packet.dts - shift, ost
            o.mux(packet)
    with av.open(str(trimmed)) as c:  # The file really holds the pre-roll, flagged hidden.
        assert sum(p.is_discard for p in c.demux(video=0)) == hidden
    got = _assert_reads_as_presented(trimmed)
    assert [read_counter(f) for f in got] == list(range(hidden, 120))
    assert _opencv_count(trimmed) == 120 - hidden
    with open_video(trimmed) as v:
        assert v.info.fps == 30 and not v.info.warnings
        assert [read_counter(f) for f in v.frames(40, 43)] == [hidden + k for k in (40, 41, 42)]


# --- Truncation -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def whole_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """100 noisy frames (4 s at 25 fps): MP4 with the index at the front and at the back, MKV."""
    d = tmp_path_factory.mktemp("whole")
    return {
        "faststart": _encode(d / "fs.mp4", 100, noise=True, muxer={"movflags": "faststart"}),
        "moov-last": _encode(d / "ml.mp4", 100, noise=True),
        "mkv": _encode(d / "m.mkv", 100, noise=True),
    }


def test_whole_files_are_read_in_full(whole_files: dict[str, Path]):
    for path in whole_files.values():
        info = probe(path)
        assert (info.frame_count, info.fps, info.warnings) == (100, 25, ())


def _cut(whole: Path, tmp_path: Path, fraction: float) -> Path:
    data = whole.read_bytes()
    cut = tmp_path / f"cut{round(fraction * 100)}{whole.suffix}"
    cut.write_bytes(data[: int(len(data) * fraction)])
    return cut


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_mp4_with_index_in_front_is_refused_with_both_counts(
    whole_files: dict[str, Path], tmp_path: Path, fraction: float
):
    """The index says 100 frames; the file holds fewer. Rendering what is there would cut the
    shot and trim the dub without a word, so it is a damaged-source error."""
    cut = _cut(whole_files["faststart"], tmp_path, fraction)
    with pytest.raises(MediaError) as err:
        open_video(cut)
    message = str(err.value)
    assert message.startswith(f"{cut}: damaged video: the container lists 100 frames but only ")
    found = int(message.split("only ")[1].split()[0])
    assert 0 < found < 100 and "\n" not in message and "ffmpeg -i IN -c copy" in message


@pytest.mark.parametrize("fraction", [0.5, 0.95])
def test_truncated_mp4_with_index_at_the_end_is_unreadable(
    whole_files: dict[str, Path], tmp_path: Path, fraction: float
):
    cut = _cut(whole_files["moov-last"], tmp_path, fraction)
    with pytest.raises(MediaError, match=_says(cut, "not a readable video") + ".*truncated"):
        open_video(cut)


@pytest.mark.parametrize("fraction", [0.3, 0.8])
def test_truncated_matroska_is_refused_by_its_declared_duration(
    whole_files: dict[str, Path], tmp_path: Path, fraction: float
):
    cut = _cut(whole_files["mkv"], tmp_path, fraction)
    claim = _says(cut, "damaged video: the container says it lasts 4.000 s (100 frames) but ")
    with pytest.raises(MediaError, match=claim + r"only \d+ frames"):
        open_video(cut)


def _tail_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the scan's decodes of a last group of pictures (one entry per decode)."""
    calls: list[int] = []
    decoded = packet_scan._decoded

    def counting(ctx: av.VideoCodecContext, packets: list[av.Packet]) -> set[int]:
        calls.append(len(packets))
        return decoded(ctx, packets)

    monkeypatch.setattr(packet_scan, "_decoded", counting)
    return calls


def test_a_whole_indexed_file_is_not_decoded_at_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """An MP4 with one keyframe: its index lists every packet and none is short, so opening it
    decodes nothing past the first frame (it used to decode the whole file at every open). The
    same stream in Matroska, whose cues list keyframes only, has its last group decoded."""
    calls = _tail_decodes(monkeypatch)
    mp4 = _encode(tmp_path / "one_gop.mp4", 60, noise=True, options={"g": "250", "bf": "2"})
    assert probe(mp4).frame_count == 60 and calls == []
    mkv = _encode(tmp_path / "one_gop.mkv", 60, noise=True, options={"g": "250", "bf": "2"})
    assert probe(mkv).frame_count == 60 and calls == [60]


def _cut_inside_last_packet(tmp_path: Path) -> Path:
    """60 frames in one group of pictures (MP4, index at the front), the file's last 10 bytes
    (inside the last packet) cut off."""
    whole = _encode(
        tmp_path / "fs.mp4",
        60,
        noise=True,
        options={"g": "250", "bf": "2"},
        muxer={"movflags": "faststart"},
    )
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[:-10])
    return cut


def _assert_reads_what_it_counts(path: Path, calls: list[int]) -> None:
    """The last group was decoded at open, frames were lost from it, and the reader yields
    exactly the frames it counts, in order."""
    with open_video(path) as src:
        n = src.info.frame_count
        frames = list(src.frames())
    assert calls == [60] and 0 < n < 60 and len(frames) == n
    assert [read_counter(f) for f in frames] == list(range(n))


def test_a_last_packet_cut_short_has_its_group_decoded_and_its_lost_frames_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The index is whole (it is at the front) but the file ends inside the last packet: FFmpeg
    flags that packet corrupt, so the container does not vouch for the tail, the last group is
    decoded, and the frames that never come out of it are not counted: the reader yields every
    frame it counts."""
    calls = _tail_decodes(monkeypatch)
    cut = _cut_inside_last_packet(tmp_path)
    _assert_reads_what_it_counts(cut, calls)


def test_a_file_cut_inside_its_last_packet_and_rewrapped_reads_the_frames_that_decode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """What the truncation errors advise (re-wrap the frames that survive) gives a file whose
    index is whole around a cut last packet: no packet is flagged, but the packet's own NAL
    lengths run past its end, so the last group is decoded and the frames that never come out
    of it are not counted (trusting the index alone counted 60 and the read failed at 57)."""
    calls = _tail_decodes(monkeypatch)
    cut = _cut_inside_last_packet(tmp_path)
    rewrapped = tmp_path / "rewrapped.mov"
    with av.open(str(cut)) as i, av.open(str(rewrapped), "w") as o:
        ist = i.streams.video[0]
        ost = o.add_stream_from_template(ist)
        for packet in i.demux(ist):
            if packet.dts is not None:
                packet.stream = ost
                o.mux(packet)
    with av.open(str(rewrapped)) as c:
        assert not any(p.is_corrupt for p in c.demux(video=0))
    _assert_reads_what_it_counts(rewrapped, calls)


# --- Variable frame rate ----------------------------------------------------------------------

# Frame times in 1/100 s on a 25 fps grid (4 ticks a frame): frame 2 and 3 land on one slot
# (2 is dropped), 5.5 rounds up onto 7's slot (6 is dropped), slot 5 repeats frame 5.
VFR_PTS = [0, 4, 8, 9, 12, 16, 22, 24, 28]
VFR_CONFORMED = [0, 1, 3, 4, 5, 5, 7, 8]


def test_variable_frame_rate_is_refused_with_a_fix_that_works(tmp_path: Path):
    path = _write_with_pts(tmp_path / "vfr.mkv", VFR_PTS, Fraction(1, 100))
    with pytest.raises(MediaError) as err:
        open_video(path)
    assert str(err.value).startswith(f"{path}: variable frame rate")
    assert "set conform_vfr: true to resample it onto a constant 25.000 fps grid " in str(err.value)
    assert "(1 frame(s) repeated, 2 dropped)" in str(err.value)
    with open_video(path, conform=True) as src:
        info = src.info
        got = [read_counter(f) for f in src.frames()]
        middle = [read_counter(f) for f in src.frames(4, 7)]
    assert (info.fps, info.frame_count, info.filled_frames, info.dropped_frames) == (25, 8, 1, 2)
    assert got == VFR_CONFORMED and middle == VFR_CONFORMED[4:7]
    assert info.warnings == (
        f"{path}: variable frame rate conformed onto a constant 25 fps grid (conform_vfr): "
        "1 frame(s) repeated, 2 dropped",
    )


def test_conform_of_alternating_durations_repeats_onto_the_nearest_slots(tmp_path: Path):
    # 40 and 60 ms frames: at 25 fps, frames land on slots 0 1 3 4 5 6 8 9 10 11.
    path = _write_with_pts(
        tmp_path / "alt.mkv", [0, 2, 5, 7, 10, 12, 15, 17, 20, 22], Fraction(1, 50)
    )
    with open_video(path, conform=True) as src:
        assert (src.info.frame_count, src.info.filled_frames, src.info.dropped_frames) == (12, 2, 0)
        assert [read_counter(f) for f in src.frames()] == [0, 1, 1, 2, 3, 4, 5, 5, 6, 7, 8, 9]


# --- Odd time bases ---------------------------------------------------------------------------

NTSC_FILM = Fraction(24000, 1001)


@pytest.mark.parametrize(
    ("name", "time_base", "options"),
    [
        ("tb90k.mov", Fraction(1, 90000), {}),
        ("tb30k.mp4", Fraction(1, 30000), {}),  # Declares 450000/18769 as its average rate.
        ("tb90k.ts", Fraction(1, 90000), {}),  # Starts at a non-zero time; seeks by estimate.
        ("tbntsc.avi", Fraction(1001, 30000), {"bf": "0"}),  # 1.25 ticks a frame, rounded.
        ("tb60k.nut", Fraction(1, 60000), {}),
    ],
)
def test_odd_time_bases_read_at_the_exact_rate(
    tmp_path: Path, name: str, time_base: Fraction, options: dict[str, str]
):
    path = _encode(tmp_path / name, 30, NTSC_FILM, options=options, time_base=time_base)
    with av.open(str(path)) as c:
        assert c.streams.video[0].time_base == time_base  # The container kept the odd base.
    got = _assert_reads_as_presented(path)
    assert [read_counter(f) for f in got] == list(range(30))
    assert probe(path).fps == NTSC_FILM


# --- Rotation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rotation", [90, 180, -90])
def test_quarter_turns_are_applied_as_players_show_them(tmp_path: Path, rotation: int):
    path = _encode(tmp_path / "rot.mp4", 6, rotation=rotation)
    turns = (rotation // 90) % 4
    with open_video(path) as src:
        info = src.info
        got = list(src.frames())
    upright = (HEIGHT, WIDTH) if turns % 2 else (WIDTH, HEIGHT)
    assert (info.width, info.height, info.rotation) == (*upright, 90 * turns)
    assert f"turns the picture {90 * turns} deg; frames are read upright" in info.warnings[0]
    assert [read_counter(np.rot90(f, -turns)) for f in got] == list(range(6))
    cap = cv2.VideoCapture(str(path))  # OpenCV applies the display matrix too.
    for frame in got:
        ok, bgr = cap.read()
        assert ok and bgr.shape == frame.shape
        assert np.abs(bgr[..., ::-1].astype(int) - frame).mean() < 4
    cap.release()


def test_other_display_matrices_are_refused(tmp_path: Path):
    tilted = _encode(tmp_path / "tilted.mp4", 3, rotation=45)
    with pytest.raises(MediaError, match=_says(tilted, "its display matrix turns it by 45.0 deg")):
        open_video(tilted)
    one = 1 << 16
    mirrored = _encode(tmp_path / "mirror.mp4", 3, matrix=[-one, 0, 0, 0, one, 0, 0, 0, 1 << 30])
    with pytest.raises(MediaError, match=_says(mirrored, "its display matrix mirrors the picture")):
        open_video(mirrored)


# --- Pixel formats, streams, lengths ----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "codec", "pix_fmt"),
    [
        ("ten.mkv", "ffv1", "yuv420p10le"),
        ("ten.mp4", "libx264", "yuv420p10le"),
        ("ten.mov", "prores_ks", "yuv422p10le"),
    ],
)
def test_ten_bit_sources_decode_to_the_presented_frames(
    tmp_path: Path, name: str, codec: str, pix_fmt: str
):
    path = _encode(tmp_path / name, 12, codec=codec, pix_fmt=pix_fmt)
    assert probe(path).pix_fmt == pix_fmt
    got = _assert_reads_as_presented(path)
    assert [read_counter(f) for f in got] == list(range(12))


def test_a_video_without_audio_reads_and_says_so(tmp_path: Path):
    path = _encode(tmp_path / "silent.mp4", 10)
    assert probe(path).has_audio is False
    assert [read_counter(f) for f in _assert_reads_as_presented(path)] == list(range(10))
    with pytest.raises(MediaError, match=_says(path, "has no audio stream")):
        load_audio(path)


@pytest.mark.parametrize(("name", "codec"), [("one.mp4", "libx264"), ("one.mkv", "ffv1")])
def test_a_one_frame_video(tmp_path: Path, name: str, codec: str):
    path = _encode(tmp_path / name, 1, codec=codec, pix_fmt="yuv420p")
    with open_video(path) as src:
        assert (src.info.frame_count, src.info.fps, src.info.warnings) == (1, 25, ())
        assert [read_counter(f) for f in src.frames(0, 1)] == [0]
        assert list(src.frames(1, 1)) == []
        with pytest.raises(MediaError, match=_says(path, "frame range [0, 2) is outside 0..1")):
            list(src.frames(0, 2))
