"""Frame-exact, streaming video decode with PyAV.

A frame's number is its slot on the stream's constant frame-rate grid. :func:`open_video`
demuxes the video stream once (packets only: fast) to learn every frame's timestamp, and decodes
the first and last group of pictures to drop packets that never become frames (edit lists trim
some), so a later seek to frame ``n`` lands exactly on it, and the frame count is what a decoder
really delivers, even with B-frames, odd time bases or a non-zero start time.
Variable-frame-rate sources are detected there and refused with a message saying how to conform
them, because a dub has to be laid against a fixed frame grid; a constant-rate stream that merely
lacks a few frames is conformed by repeating the frame before each gap (and says so).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from lipdub.errors import MediaError

log = logging.getLogger(__name__)

#: A frame whose duration differs from the nominal one by more than this fraction of a frame
#: marks the stream as variable-frame-rate (timestamps are rounded to the time base, so a little
#: slack is normal).
VFR_TOLERANCE = 0.5
#: A constant-rate stream may lack this many frames (or this fraction of them, if more) and still be
#: conformed automatically; beyond that it is treated as variable-rate unless the caller asks to
#: conform it anyway.
MAX_AUTO_FILLED_FRAMES = 2
#: Leading frames checked for decodability when a file is opened.
HEAD_CHECK_FRAMES = 16
MAX_AUTO_FILLED_FRACTION = 0.01


@dataclass(frozen=True)
class VideoInfo:
    """What lipdub needs to know about a video file, read once when it is opened."""

    path: Path  # The file.
    width: int  # Frame width in pixels.
    height: int  # Frame height in pixels.
    fps: Fraction  # Exact frame rate, e.g. Fraction(30000, 1001) for 29.97.
    frame_count: int  # Number of frames, counted from the packets (not the header's guess).
    start_timecode: str | None  # SMPTE start timecode from the container, if it has one.
    has_audio: bool  # True when the file has at least one audio stream.
    codec: str  # Video codec name, e.g. "h264".
    pix_fmt: str  # Decoder pixel format, e.g. "yuv420p".
    duration_s: float  # frame_count / fps.
    filled_frames: int = 0  # Slots missing from a constant-rate stream, filled by repetition.

    @property
    def drop_frame(self) -> bool:
        """True when the start timecode is drop-frame (``;`` before the frames field)."""
        return bool(self.start_timecode and ";" in self.start_timecode)


class VideoSource:
    """An open video file; use as a context manager, read frames with :meth:`frames`."""

    def __init__(self, path: Path, conform: bool = False) -> None:
        self.path = path
        self._container = _open_container(path)
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        pts = _scan_pts(self._container, self._stream, path)
        fps, grid = _frame_grid(self._stream, pts, path, conform)
        self._slot_of = {int(p): int(s) for p, s in zip(pts, grid, strict=True)}
        count = int(grid[-1]) + 1
        self._is_hole = np.ones(count, dtype=bool)
        self._is_hole[grid] = False
        # Every slot shows the latest real frame at or before it (holes repeat the previous one).
        owner = np.maximum.accumulate(np.where(self._is_hole, -1, np.arange(count)))
        slot_pts = np.full(count, -1, dtype=np.int64)
        slot_pts[grid] = pts
        self._seek_pts = slot_pts[owner]
        self.info = _describe(path, self._container, self._stream, fps, count, len(pts))
        if self.info.filled_frames:
            log.warning(
                "%s: %d frame(s) missing from the constant-rate grid; each is filled with a "
                "copy of the frame before it",
                path,
                self.info.filled_frames,
            )

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the file."""
        self._container.close()

    def frames(self, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        """Yield RGB uint8 (H, W, 3) frames numbered ``start`` up to ``stop`` (exclusive).

        Decoding starts at the keyframe before ``start``; frames before it are decoded and
        dropped, so the first frame yielded is exactly frame ``start``. Only one frame is held
        at a time.

        Raises:
            MediaError: the range is outside the file, or the file is corrupt inside it.
        """
        for frame in self.av_frames(start, stop):
            yield frame.to_ndarray(format="rgb24")

    def av_frames(self, start: int = 0, stop: int | None = None) -> Iterator[av.VideoFrame]:
        """Like :meth:`frames` but yields PyAV frames (for callers that keep the pixel format)."""
        n = self.info.frame_count
        stop = n if stop is None else stop
        if not 0 <= start <= stop <= n:
            raise MediaError(f"{self.path}: frame range [{start}, {stop}) is outside 0..{n}")
        if start == stop:
            return
        self._container.seek(
            int(self._seek_pts[start]), stream=self._stream, backward=True, any_frame=False
        )
        expected = start
        last: av.VideoFrame | None = None
        try:
            for frame in self._container.decode(self._stream):
                slot = self._slot_of.get(frame.pts) if frame.pts is not None else None
                if slot is None:
                    continue  # Not a frame the demuxer listed (e.g. a discarded leading frame).
                if slot < start:
                    last = frame  # Pre-roll from the keyframe before `start`.
                    continue
                while expected < min(slot, stop):
                    if not self._is_hole[expected] or last is None:
                        raise MediaError(
                            f"{self.path}: frame {expected} could not be decoded "
                            f"(next good frame is {slot}); the file may be corrupt"
                        )
                    yield last  # A hole in the frame grid: repeat the previous frame.
                    expected += 1
                if expected >= stop:
                    return
                if slot == expected:
                    yield frame
                    last = frame
                    expected += 1
                    if expected >= stop:
                        return
        except av.error.FFmpegError as exc:
            raise MediaError(f"{self.path}: decode failed near frame {expected}: {exc}") from exc
        while expected < stop and self._is_hole[expected] and last is not None:
            yield last
            expected += 1
        if expected < stop:
            raise MediaError(
                f"{self.path}: file ends at frame {expected}, expected {stop}; it may be truncated"
            )


def open_video(path: str | Path, conform: bool = False) -> VideoSource:
    """Open ``path`` for frame-exact reading.

    Arguments:
        path: the video file.
        conform: accept a stream with many missing frames on its rate grid (variable-rate
            capture), repeating frames to fill the gaps, instead of refusing it.

    Raises:
        MediaError: the file is missing, not a video, empty or variable-frame-rate.
    """
    return VideoSource(Path(path), conform)


def probe(path: str | Path) -> VideoInfo:
    """Return the :class:`VideoInfo` of ``path`` without keeping it open."""
    with open_video(path) as src:
        return src.info


def _open_container(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path}: is a directory, expected a video file")
    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: not a readable video ({exc.strerror or exc})") from exc
    if not container.streams.video:
        container.close()
        raise MediaError(f"{path}: has no video stream")
    return container


def _scan_pts(
    container: av.container.InputContainer, stream: av.VideoStream, path: Path
) -> list[int]:
    """Demux every packet of ``stream`` and return the sorted presentation timestamps."""
    pts: list[int] = []
    keyframes: list[int] = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue  # Flush packets, and packets the decoder would not turn into a frame.
            pts.append(packet.pts)
            if packet.is_keyframe:
                keyframes.append(packet.pts)
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: corrupt video stream ({exc})") from exc
    if not pts:
        raise MediaError(f"{path}: the video stream has no frames")
    pts.sort()
    if len(set(pts)) != len(pts):
        raise MediaError(f"{path}: duplicate frame timestamps; re-wrap it (e.g. remux to .mov)")
    pts = _drop_undecodable_ends(container, stream, pts, keyframes, path)
    container.seek(pts[0], stream=stream, backward=True)
    return pts


def _decoded_pts(
    container: av.container.InputContainer, stream: av.VideoStream, seek: int, until: int | None
) -> set[int]:
    """Timestamps the decoder delivers from the keyframe at ``seek`` up to ``until``."""
    container.seek(seek, stream=stream, backward=True, any_frame=False)
    seen: set[int] = set()
    for frame in container.decode(stream):
        if frame.pts is not None:
            seen.add(frame.pts)
            if until is not None and frame.pts >= until:
                break
    return seen


def _drop_undecodable_ends(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    pts: list[int],
    keyframes: list[int],
    path: Path,
) -> list[int]:
    """Remove leading/trailing packets that never come out of the decoder as frames."""
    keyframes = sorted(keyframes) or [pts[0]]
    try:
        # Only the first few frames can be trimmed at the head (edit lists, decoder delay), so
        # decoding stops once the decoder has got past them rather than at the next keyframe.
        head_limit = pts[min(len(pts) - 1, HEAD_CHECK_FRAMES)]
        head = _decoded_pts(container, stream, pts[0], head_limit)
        tail = _decoded_pts(container, stream, keyframes[-1], None)
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: corrupt video stream ({exc})") from exc
    lo, hi = 0, len(pts)
    while lo < hi and pts[lo] not in head and pts[lo] < head_limit:
        lo += 1
    while hi > lo and pts[hi - 1] not in tail and pts[hi - 1] >= keyframes[-1]:
        hi -= 1
    if lo == hi:
        raise MediaError(f"{path}: no frame of the video stream can be decoded")
    if lo or hi < len(pts):
        log.info("%s: %d packet(s) at the ends never decode; not counted", path, lo + len(pts) - hi)
    return pts[lo:hi]


def _frame_grid(
    stream: av.VideoStream, pts: list[int], path: Path, conform: bool
) -> tuple[Fraction, np.ndarray]:
    """The exact frame rate and each timestamp's slot on the constant-rate frame grid.

    The container's declared rates are tried first, then the median frame duration; the first
    rate on whose grid every timestamp lands (within rounding of the time base) wins. A
    constant-rate stream with a few frames missing (a common capture fault) is conformed: the
    gaps become slots that repeat the previous frame. Anything else is variable-rate and refused.
    """
    tb = Fraction(stream.time_base)
    ticks = np.asarray(pts, dtype=np.int64) - pts[0]
    deltas = np.diff(ticks)
    candidates = [stream.average_rate, stream.guessed_rate, stream.base_rate]
    if deltas.size:
        candidates.append(1 / (Fraction(int(np.median(deltas))) * tb))
    tried = []
    for rate in candidates:
        if not rate:
            continue
        rate = Fraction(rate).limit_denominator(1001)
        slots = _fit_grid(ticks, rate, tb, conform)
        if slots is not None:
            return rate, slots
        tried.append(rate)
    if not tried:
        raise MediaError(f"{path}: cannot tell the frame rate")
    durations = deltas * float(tb) * 1000
    rate = tried[0]
    raise MediaError(
        f"{path}: variable frame rate (frame durations from {durations.min():.1f} to "
        f"{durations.max():.1f} ms); conform it to a constant rate first, e.g. "
        f"ffmpeg -i IN -vf fps={float(rate):.3f} -c:v prores_ks OUT.mov, or set "
        f"conform_vfr: true to repeat frames onto a {float(rate):.3f} fps grid"
    )


def _fit_grid(ticks: np.ndarray, rate: Fraction, tb: Fraction, conform: bool) -> np.ndarray | None:
    """Slot of each timestamp on ``rate``'s grid, or None when they do not sit on it."""
    nominal = float(1 / (rate * tb))  # One frame's duration in time-base ticks.
    slots = np.rint(ticks / nominal).astype(np.int64)
    # Timestamps are rounded to the time base, so allow a tick (or half a frame) of slack.
    slack = max(1.0, min(VFR_TOLERANCE * nominal, 1.0 + 0.02 * nominal))
    if np.abs(ticks - slots * nominal).max() > slack or np.any(np.diff(slots) < 1):
        return None
    holes = int(slots[-1]) + 1 - len(ticks)
    if holes > max(MAX_AUTO_FILLED_FRAMES, MAX_AUTO_FILLED_FRACTION * len(ticks)) and not conform:
        return None
    return slots


def _describe(
    path: Path,
    container: av.container.InputContainer,
    stream: av.VideoStream,
    fps: Fraction,
    frame_count: int,
    real_frames: int,
) -> VideoInfo:
    ctx = stream.codec_context
    timecode = stream.metadata.get("timecode") or container.metadata.get("timecode")
    if timecode is None:
        for data_stream in container.streams.data:
            timecode = data_stream.metadata.get("timecode") or timecode
    return VideoInfo(
        path=path,
        width=ctx.width,
        height=ctx.height,
        fps=fps,
        frame_count=frame_count,
        start_timecode=timecode,
        has_audio=bool(container.streams.audio),
        codec=ctx.name,
        pix_fmt=ctx.pix_fmt or "unknown",
        duration_s=float(frame_count / fps),
        filled_frames=frame_count - real_frames,
    )
