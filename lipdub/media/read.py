"""Frame-exact, streaming video decode with PyAV.

What a frame number means
    Frame ``n`` of a video is slot ``n`` of its constant-rate grid: the grid starts at the first
    frame FFmpeg presents and advances by exactly 1/fps (``fps`` is rational: 24000/1001, 25,
    30000/1001, ...). Reading frames ``[a, b)`` yields exactly ``b - a`` frames, whatever the
    codec's reordering, the time base or the start time, and a seek lands exactly on frame ``a``.

Which frames are presented (:mod:`lipdub.media.packet_scan`)
    The ones FFmpeg and players show: frames an edit list hides (pre-roll before a trim) are
    decoded as references only and never numbered; packets at the ends that never decode are not
    frames. A file holding fewer frames than its own index or declared duration says is damaged
    (usually truncated) and refused with the counts, not quietly cut short.

How frames are put on the grid (:mod:`lipdub.media.frame_grid`)
    The rate on whose grid the timestamps sit is found from the declared and measured rates. A
    few empty slots (capture drops) repeat the frame before them, with a warning. A
    variable-rate stream is refused, or with ``conform`` (``conform_vfr: true``) resampled onto a
    constant grid the way FFmpeg's ``fps`` filter does, counting the frames repeated and dropped.

Orientation
    A display matrix that turns the picture by a multiple of 90 degrees (phones) is applied:
    :meth:`VideoSource.frames` yields frames upright, as players show them, and
    :class:`VideoInfo` gives the upright size; the render writes them upright without the flag.
    A matrix that mirrors the picture or turns it by another angle is refused.

Whatever was repeated, dropped or turned is in :attr:`VideoInfo.warnings` (and logged), for the
caller's report. The file is scanned once on open (its packets, decoding only up to the first
frame and the last group of pictures); frames are then decoded on demand, one at a time.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from lipdub.errors import MediaError
from lipdub.media.frame_grid import FrameGrid, frame_grid
from lipdub.media.packet_scan import PacketScan, scan_packets

log = logging.getLogger(__name__)

#: swscale's threads for every conversion of a frame to or from RGB: one, a count that does not
#: follow the machine (PyAV's default is "auto": the CPUs), and cheap (about 1 ms a 1080p frame).
#: Files that changed from encode to encode on a busy machine were first blamed on it; the
#: conversions measured byte-stable, and the cause was libx264's macroblock tree
#: (lipdub.media.write.X264_DETERMINISTIC).
SCALE_THREADS = 1

#: Packet scans kept per process: a render opens its source five or six times (plan, analysis,
#: each pass, QC), and a scan demuxes the whole file and, where the container does not vouch for
#: its tail (Matroska, MPEG-TS), decodes the last group of pictures — the whole file when it has
#: one keyframe (measured: about 1 s per open of a 10 s 1080p clip, a sixth of a cached render).
SCAN_CACHE_SIZE = 16
_scans: OrderedDict[tuple[str, int, int, int], PacketScan] = OrderedDict()
#: A display-matrix angle within this many degrees of a quarter turn is that quarter turn.
ROTATION_TOLERANCE_DEG = 0.5


@dataclass(frozen=True)
class VideoInfo:
    """What lipdub needs to know about a video file, read once when it is opened."""

    path: Path  # The file.
    width: int  # Frame width in pixels, upright (after the display matrix's rotation).
    height: int  # Frame height in pixels, upright.
    fps: Fraction  # Exact frame rate, e.g. Fraction(30000, 1001) for 29.97.
    frame_count: int  # Slots on the frame grid: the frames a read of the whole file yields.
    start_timecode: str | None  # SMPTE start timecode from the container, if it has one.
    has_audio: bool  # True when the file has at least one audio stream.
    codec: str  # Video codec name, e.g. "h264".
    pix_fmt: str  # Decoder pixel format, e.g. "yuv420p".
    duration_s: float  # frame_count / fps.
    filled_frames: int = 0  # Slots with no frame of their own, showing the frame before.
    dropped_frames: int = 0  # Frames a conform dropped (a later frame took their slot).
    rotation: int = 0  # Degrees counterclockwise the frames are turned to stand upright.
    warnings: tuple[str, ...] = ()  # What the reader repeated, dropped or turned, for reports.

    @property
    def drop_frame(self) -> bool:
        """True when the start timecode is drop-frame (``;`` before the frames field)."""
        return bool(self.start_timecode and ";" in self.start_timecode)


def _scan(container: av.container.InputContainer, stream: av.VideoStream, path: Path) -> PacketScan:
    """:func:`scan_packets`, once per file content in this process (keyed by the resolved path,
    size and modification time, so an edited or replaced file is scanned again)."""
    st = Path(path).stat()
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns, stream.index)
    if key in _scans:
        _scans.move_to_end(key)
        return _scans[key]
    scan = scan_packets(container, stream, path)
    _scans[key] = scan
    while len(_scans) > SCAN_CACHE_SIZE:
        _scans.popitem(last=False)
    return scan


class VideoSource:
    """An open video file; use as a context manager, read frames with :meth:`frames`."""

    def __init__(self, path: Path, conform: bool = False) -> None:
        self.path = path
        self._container = _open_container(path)
        try:
            self._stream = self._container.streams.video[0]
            self._stream.thread_type = "AUTO"
            scan = _scan(self._container, self._stream, path)
            if self._stream.time_base is None:  # FFmpeg's demuxers always set one.
                raise MediaError(f"{path}: the video stream has no time base")
            grid = frame_grid(
                scan.pts,
                Fraction(self._stream.time_base),
                _declared_rates(self._stream),
                path,
                conform,
            )
            self._turns = _quarter_turns(scan, path)
        except BaseException:
            self._container.close()
            raise
        pts = np.asarray(scan.pts, dtype=np.int64)
        kept = grid.slots >= 0
        self._slot_of = {int(p): int(s) for p, s in zip(pts[kept], grid.slots[kept], strict=True)}
        self._is_hole = np.ones(grid.count, dtype=bool)
        self._is_hole[grid.slots[kept]] = False
        # Every slot shows the latest frame at or before it (holes repeat the one before).
        self._owner = np.maximum.accumulate(np.where(self._is_hole, -1, np.arange(grid.count)))
        slot_pts = np.full(grid.count, -1, dtype=np.int64)
        slot_pts[grid.slots[kept]] = pts[kept]
        self._seek_pts = slot_pts[self._owner]
        self.info = _describe(path, self._container, self._stream, grid, self._turns)
        for message in self.info.warnings:
            log.warning("%s", message)

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
        dropped, so the first frame yielded is exactly frame ``start``. Frames are upright (the
        display matrix's quarter turn applied). Only one frame is held at a time.

        Raises:
            MediaError: the range is outside the file, or the file is corrupt inside it.
        """
        for frame in self.av_frames(start, stop):
            rgb = frame.to_ndarray(format="rgb24", threads=SCALE_THREADS)
            yield np.ascontiguousarray(np.rot90(rgb, self._turns)) if self._turns else rgb

    def av_frames(self, start: int = 0, stop: int | None = None) -> Iterator[av.VideoFrame]:
        """Like :meth:`frames` but yields PyAV frames as coded: pixel format kept, and not
        turned upright (see :attr:`VideoInfo.rotation`)."""
        n = self.info.frame_count
        stop = n if stop is None else stop
        if not 0 <= start <= stop <= n:
            raise MediaError(f"{self.path}: frame range [{start}, {stop}) is outside 0..{n}")
        if start == stop:
            return
        expected = start
        last: av.VideoFrame | None = None
        try:
            for slot, frame in self._listed_from(start):
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

    def _listed_from(self, start: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """``(slot, frame)`` for each numbered frame, decoded from a keyframe at or before the
        frame that slot ``start`` shows.

        Some demuxers (MPEG-TS among them) seek by estimate and can land past the keyframe
        asked for; then decoding restarts from the beginning of the file.
        """
        owner = int(self._owner[start])
        for rewind in (False, True):
            if rewind:
                self._container.seek(0)
            else:
                self._container.seek(
                    int(self._seek_pts[start]), stream=self._stream, backward=True, any_frame=False
                )
            landed = False
            for frame in self._container.decode(self._stream):
                slot = self._slot_of.get(frame.pts) if frame.pts is not None else None
                if slot is None:
                    continue  # Not a numbered frame (hidden by an edit list, or dropped).
                if not landed and slot > owner and not rewind:
                    break  # The seek landed past the frame asked for.
                landed = True
                yield slot, frame
            if landed:
                return


def open_video(path: str | Path, conform: bool = False) -> VideoSource:
    """Open ``path`` for frame-exact reading.

    Arguments:
        path: the video file.
        conform: resample a variable-frame-rate source onto a constant grid (repeating and
            dropping frames, counted in :attr:`VideoInfo.warnings`) instead of refusing it.

    Raises:
        MediaError: the file is missing, not a video, empty, damaged (fewer frames than its
            container declares), oddly oriented, or variable-frame-rate without ``conform``.
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
        raise MediaError(
            f"{path}: not a readable video ({exc.strerror or exc}); if it is one, it may be "
            "truncated or still being written"
        ) from exc
    if not container.streams.video:
        container.close()
        raise MediaError(f"{path}: has no video stream")
    return container


def _declared_rates(stream: av.VideoStream) -> list[Fraction | None]:
    """The container's frame rates, most trusted first."""
    return [stream.guessed_rate, stream.average_rate, stream.base_rate]


def _quarter_turns(scan: PacketScan, path: Path) -> int:
    """Quarter turns counterclockwise that stand the frames upright (np.rot90's ``k``).

    Raises:
        MediaError: the display matrix mirrors the picture or turns it by another angle.
    """
    turns = round(scan.rotation / 90)
    if scan.mirrored or abs(scan.rotation - 90 * turns) > ROTATION_TOLERANCE_DEG:
        what = "mirrors the picture" if scan.mirrored else f"turns it by {scan.rotation:.1f} deg"
        raise MediaError(
            f"{path}: its display matrix {what}; lipdub applies quarter turns only. Re-export "
            "it as it should look (e.g. ffmpeg -i IN -c:v prores_ks OUT.mov applies the matrix)"
        )
    return turns % 4


def _describe(
    path: Path,
    container: av.container.InputContainer,
    stream: av.VideoStream,
    grid: FrameGrid,
    turns: int,
) -> VideoInfo:
    ctx = stream.codec_context
    timecode = stream.metadata.get("timecode") or container.metadata.get("timecode")
    if timecode is None:
        for data_stream in container.streams.data:
            timecode = data_stream.metadata.get("timecode") or timecode
    width, height = (ctx.height, ctx.width) if turns % 2 else (ctx.width, ctx.height)
    warnings = []
    fps = f"{float(grid.fps):.3f}".rstrip("0").rstrip(".")
    if grid.conformed:
        warnings.append(
            f"{path}: variable frame rate conformed onto a constant {fps} fps grid "
            f"(conform_vfr): {grid.repeated} frame(s) repeated, {grid.dropped} dropped"
        )
    elif grid.repeated:
        warnings.append(
            f"{path}: {grid.repeated} frame(s) missing from the constant-rate grid; each is "
            "filled with a copy of the frame before it"
        )
    if turns:
        warnings.append(
            f"{path}: its display matrix turns the picture {90 * turns} deg; frames are read "
            f"upright ({width}x{height}), as players show them, and written upright"
        )
    return VideoInfo(
        path=path,
        width=width,
        height=height,
        fps=grid.fps,
        frame_count=grid.count,
        start_timecode=timecode,
        has_audio=bool(container.streams.audio),
        codec=ctx.name,
        pix_fmt=ctx.pix_fmt or "unknown",
        duration_s=float(grid.count / grid.fps),
        filled_frames=grid.repeated,
        dropped_frames=grid.dropped,
        rotation=90 * turns,
        warnings=tuple(warnings),
    )
