"""One demux pass over a video stream: which frames FFmpeg presents, and whether the file is whole.

- Packets that an edit list hides (the pre-roll before the edit's start, which the demuxer flags
  as discard) are decoded by FFmpeg as references only and never presented, so they are not
  frames here either.
- Packets at either end that never come out of the decoder (leading frames whose references are
  not in the file, a damaged last group of pictures) are not frames. The first frame the decoder
  delivers is found while demuxing; the last group of pictures is kept (compressed) and decoded
  after the pass, so no seek is needed (some formats, MPEG-TS among them, seek unreliably).
- The container's own claim about the stream is checked against what the file holds: the index
  (MP4/MOV, AVI list every packet) and the Matroska per-track ``DURATION`` tag. A shortfall is a
  damaged (usually truncated) file and is refused: quietly rendering the frames that happen to be
  there would trim the dub without a word.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from lipdub.errors import MediaError

log = logging.getLogger(__name__)

#: The last group of pictures is decoded to find trailing frames that never decode; a stream with
#: no keyframe among its last this-many packets is not checked (it would be held in memory).
MAX_TAIL_PACKETS = 1000
#: A stream may end this many frame durations before its container's declared duration (the last
#: frame's own duration is rounded or unknown) before it counts as cut short.
DURATION_SLACK_FRAMES = 1.0
_REWRAP_FIX = (
    "copy it again from its origin, or keep the frames that survive by re-wrapping it first "
    "(ffmpeg -i IN -c copy OUT.mov)"
)


@dataclass(frozen=True)
class PacketScan:
    """What one pass over a video stream's packets found."""

    pts: list[int]  # Presented frames that decode: their timestamps, sorted.
    packets: int  # Packets demuxed, hidden ones included.
    hidden: int  # Packets an edit list hides (decoded as references only).
    undecodable: int  # Presented packets at either end that never come out of the decoder.
    end_pts: int  # Where the last demuxed packet ends (its timestamp plus its duration).
    rotation: float  # Display-matrix rotation, degrees counterclockwise (0 without one).
    mirrored: bool  # True when the display matrix also flips the picture.


def scan_packets(
    container: av.container.InputContainer, stream: av.VideoStream, path: Path
) -> PacketScan:
    """Demux every packet of ``stream`` once; refuse a file shorter than it says it is.

    Raises:
        MediaError: the stream is corrupt, has no decodable frame, repeats a timestamp, or holds
            fewer packets than the container's index lists or ends before its declared duration.
    """
    ctx = stream.codec_context
    index = stream.index_entries
    listed = len(index)  # Read before demuxing: some demuxers add entries as they read.
    listed_hidden = sum(1 for entry in index if entry.is_discard) if listed else 0
    pts: list[int] = []
    gop: list[av.Packet] | None = []
    packets = hidden = 0
    end = None
    first: av.VideoFrame | None = None
    try:
        for packet in container.demux(stream):
            if packet.pts is None and packet.size == 0:
                continue  # The flush packet PyAV adds at the end.
            packets += 1
            if first is None:
                first = _first_frame(ctx, packet)
            if packet.is_keyframe:
                gop = []
            if gop is not None:
                gop.append(packet)
                gop = gop if len(gop) <= MAX_TAIL_PACKETS else None
            if packet.size == 0 or packet.pts is None:
                continue  # Carries no frame of its own (e.g. an AVI "repeat" chunk).
            stop = packet.pts + (packet.duration or 0)
            end = stop if end is None else max(end, stop)
            if packet.is_discard:
                hidden += 1
                continue
            pts.append(packet.pts)
        if first is None:
            first = _first_frame(ctx, None)
        tail = _decoded(ctx, gop) if gop else None
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: corrupt video stream ({exc})") from exc
    if listed - listed_hidden > packets - hidden:
        raise MediaError(
            f"{path}: damaged video: the container lists {listed - listed_hidden} frames but "
            f"only {packets - hidden} are in the file (truncated, or still being copied?); "
            f"{_REWRAP_FIX}"
        )
    if not pts or end is None:
        raise MediaError(f"{path}: the video stream has no frames")
    pts.sort()
    if len(set(pts)) != len(pts):
        raise MediaError(f"{path}: duplicate frame timestamps; re-wrap it (e.g. remux to .mov)")
    _refuse_short_duration(path, stream, pts, end)
    if first is None:
        raise MediaError(f"{path}: no frame of the video stream can be decoded")
    # Presented frames before the decoder's first one never decode (missing references).
    lo = int(np.searchsorted(pts, first.pts)) if first.pts is not None else 0
    hi = len(pts)
    if tail is not None and gop:
        last_key = gop[0].pts if gop[0].pts is not None else pts[-1]
        while hi > lo and pts[hi - 1] >= last_key and pts[hi - 1] not in tail:
            hi -= 1
    if lo == hi:
        raise MediaError(f"{path}: no frame of the video stream can be decoded")
    if lo or hi < len(pts) or hidden:
        log.info(
            "%s: %d packet(s) hidden by an edit list, %d at the ends never decode; not frames",
            path,
            hidden,
            lo + len(pts) - hi,
        )
    rotation, mirrored = _display_matrix(first)
    return PacketScan(
        pts=pts[lo:hi],
        packets=packets,
        hidden=hidden,
        undecodable=lo + len(pts) - hi,
        end_pts=end,
        rotation=rotation,
        mirrored=mirrored,
    )


def _refuse_short_duration(path: Path, stream: av.VideoStream, pts: list[int], end: int) -> None:
    """Refuse a stream that ends well before the duration its Matroska header declares.

    Raises:
        MediaError: the file holds fewer frames than its ``DURATION`` tag claims.
    """
    claimed = _matroska_duration(stream.metadata.get("DURATION"))
    rate = stream.guessed_rate or stream.average_rate
    if claimed is None or not rate:
        return
    tb = Fraction(stream.time_base)
    found_end = float(end * tb)
    if (claimed - found_end) * float(rate) <= DURATION_SLACK_FRAMES:
        return
    claimed_frames = round((claimed - float(pts[0] * tb)) * float(rate))
    raise MediaError(
        f"{path}: damaged video: the container says it lasts {claimed:.3f} s "
        f"({claimed_frames} frames) but only {len(pts)} frames ({found_end:.3f} s) are in the "
        f"file (truncated, or still being copied?); {_REWRAP_FIX}"
    )


def _first_frame(ctx: av.VideoCodecContext, packet: av.Packet | None) -> av.VideoFrame | None:
    """Feed one packet (None: drain) to the decoder; its first frame out, if any."""
    try:
        frames = ctx.decode(packet)
    except av.error.InvalidDataError:
        return None  # A packet that does not decode: the frames before the first good one.
    return frames[0] if frames else None


def _decoded(ctx: av.VideoCodecContext, packets: list[av.Packet]) -> set[int]:
    """Timestamps the decoder delivers from ``packets`` (a group of pictures) alone."""
    ctx.flush_buffers()  # Drop what the head check left in the decoder; start afresh.
    seen: set[int] = set()
    for packet in [*packets, None]:
        try:
            frames = ctx.decode(packet)
        except av.error.InvalidDataError:
            continue  # A damaged packet: its frame is missing from ``seen``.
        seen.update(f.pts for f in frames if f.pts is not None)
    ctx.flush_buffers()
    return seen


def _display_matrix(frame: av.VideoFrame) -> tuple[float, bool]:
    """The display matrix's rotation (degrees counterclockwise) and whether it mirrors."""
    for data in frame.side_data:
        if data.type == av.sidedata.sidedata.Type.DISPLAYMATRIX:
            # FFmpeg's 3x3 matrix [a b u; c d v; x y w] (a-d in 16.16 fixed point); the angle
            # is av_display_rotation_get's: counterclockwise, in (-180, 180].
            m = np.frombuffer(bytes(data), dtype=np.int32).astype(np.float64) / 65536
            scale_x, scale_y = np.hypot(m[0], m[3]), np.hypot(m[1], m[4])
            if scale_x == 0 or scale_y == 0:
                return 0.0, False  # Degenerate: FFmpeg reads no rotation from it either.
            turn = -float(np.degrees(np.arctan2(m[1] / scale_y, m[0] / scale_x)))
            return (turn if turn != 0 else 0.0), bool(m[0] * m[4] - m[1] * m[3] < 0)
    return 0.0, False


def _matroska_duration(tag: str | None) -> float | None:
    """Seconds in a Matroska ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``), or None."""
    if not tag:
        return None
    try:
        hours, minutes, seconds = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None
