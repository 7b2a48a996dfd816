"""One demux pass over a video stream: which frames FFmpeg presents, and whether the file is whole.

- Packets that an edit list hides (the pre-roll before the edit's start, which the demuxer flags
  as discard) are decoded by FFmpeg as references only and never presented, so they are not
  frames here either.
- Packets at either end that never come out of the decoder (leading frames whose references are
  not in the file, a damaged last group of pictures) are not frames. The first frame the decoder
  delivers is found while demuxing; the last group of pictures is kept (compressed) and decoded
  after the pass, so no seek is needed (some formats, MPEG-TS among them, seek unreliably).
- That decode is skipped where the file vouches for its tail: the container's index lists every
  packet the pass found, no packet came back short (FFmpeg flags a packet cut by the end of the
  file as corrupt), and the last packet is whole by its own framing (H.264 and HEVC in MP4/MOV:
  its NAL units' length fields add up to its size exactly; a file cut inside that packet and then
  re-wrapped, as the errors below advise, keeps a complete index around a cut packet). A file
  with one keyframe would otherwise be decoded whole at every open, about 8 ms a 1080p frame, a
  quarter of the analysis. Matroska (whose cues list keyframes only), MPEG-TS, raw streams and
  other codecs are decoded (an intra-only codec's last group is one frame).
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
from typing import Any

import av
import numpy as np
from av.sidedata.sidedata import Type as SideDataType

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


@dataclass
class _Demuxed:
    """What the demux pass itself collected, before the checks."""

    pts: list[int]  # Presented packets' timestamps, in demux order.
    packets: int
    hidden: int
    end: int | None  # Where the last packet ends.
    first: av.VideoFrame | None  # The first frame the decoder delivers.
    gop: list[av.Packet] | None  # The last group of pictures (None: too long to keep).
    corrupt: int  # Packets FFmpeg flags corrupt (e.g. cut short by the end of the file).


def scan_packets(
    container: av.container.InputContainer, stream: av.VideoStream, path: Path
) -> PacketScan:
    """Demux every packet of ``stream`` once; refuse a file shorter than it says it is.

    Raises:
        MediaError: the stream is corrupt, has no decodable frame, repeats a timestamp, or holds
            fewer packets than the container's index lists or ends before its declared duration.
    """
    index = stream.index_entries
    listed = len(index)  # Read before demuxing: some demuxers add entries as they read.
    listed_hidden = sum(1 for entry in index if entry.is_discard) if listed else 0
    d = _demux(container, stream, path)
    if listed - listed_hidden > d.packets - d.hidden:
        raise MediaError(
            f"{path}: damaged video: the container lists {listed - listed_hidden} frames but "
            f"only {d.packets - d.hidden} are in the file (truncated, or still being copied?); "
            f"{_REWRAP_FIX}"
        )
    last = d.gop[-1] if d.gop else None
    vouched = (
        listed > 0
        and listed - listed_hidden == d.packets - d.hidden
        and not d.corrupt
        and last is not None
        and _ends_whole(stream, last)
    )
    tail = None  # Timestamps the last group of pictures decodes to (None: not decoded).
    if d.gop and not vouched:
        try:
            tail = _decoded(stream.codec_context, d.gop)
        except av.error.FFmpegError as exc:
            raise MediaError(f"{path}: corrupt video stream ({exc})") from exc
    pts = d.pts
    if not pts or d.end is None:
        raise MediaError(f"{path}: the video stream has no frames")
    pts.sort()
    if len(set(pts)) != len(pts):
        raise MediaError(f"{path}: duplicate frame timestamps; re-wrap it (e.g. remux to .mov)")
    _refuse_short_duration(path, stream, pts, d.end)
    if d.first is None:
        raise MediaError(f"{path}: no frame of the video stream can be decoded")
    lo, hi = _decodable_span(pts, d, tail)
    if lo == hi:
        raise MediaError(f"{path}: no frame of the video stream can be decoded")
    if lo or hi < len(pts) or d.hidden:
        log.info(
            "%s: %d packet(s) hidden by an edit list, %d at the ends never decode; not frames",
            path,
            d.hidden,
            lo + len(pts) - hi,
        )
    rotation, mirrored = _display_matrix(d.first)
    return PacketScan(
        pts=pts[lo:hi],
        packets=d.packets,
        hidden=d.hidden,
        undecodable=lo + len(pts) - hi,
        end_pts=d.end,
        rotation=rotation,
        mirrored=mirrored,
    )


def _demux(container: av.container.InputContainer, stream: av.VideoStream, path: Path) -> _Demuxed:
    """The pass: every packet's timestamp, the first decodable frame, the last group of
    pictures (kept for :func:`scan_packets` to decode where the container does not vouch for
    it, so no seek is needed)."""
    ctx = stream.codec_context
    d = _Demuxed(pts=[], packets=0, hidden=0, end=None, first=None, gop=[], corrupt=0)
    try:
        for packet in container.demux(stream):
            if packet.pts is None and packet.size == 0:
                continue  # The flush packet PyAV adds at the end.
            d.packets += 1
            d.corrupt += packet.is_corrupt
            if d.first is None:
                d.first = _first_frame(ctx, packet)
            if packet.is_keyframe:
                d.gop = []
            if d.gop is not None:
                d.gop.append(packet)
                d.gop = d.gop if len(d.gop) <= MAX_TAIL_PACKETS else None
            if packet.size == 0 or packet.pts is None:
                continue  # Carries no frame of its own (e.g. an AVI "repeat" chunk).
            stop = packet.pts + (packet.duration or 0)
            d.end = stop if d.end is None else max(d.end, stop)
            if packet.is_discard:
                d.hidden += 1
                continue
            d.pts.append(packet.pts)
        if d.first is None:
            d.first = _first_frame(ctx, None)
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: corrupt video stream ({exc})") from exc
    return d


def _ends_whole(stream: av.VideoStream, packet: av.Packet) -> bool:
    """True when ``packet`` (the stream's last) is whole by its own framing: H.264 or HEVC with
    length-prefixed NAL units (an ``avcC`` / ``hvcC`` record, as in MP4 and MOV) whose lengths
    add up to the packet's size exactly. False where that cannot be told (other codecs, start
    codes instead of lengths): the caller then decodes the last group of pictures."""
    ctx = stream.codec_context
    extra = bytes(ctx.extradata or b"")
    if ctx.name == "h264" and len(extra) > 4 and extra[0] == 1:
        size = (extra[4] & 3) + 1
    elif ctx.name == "hevc" and len(extra) > 21 and extra[0] == 1:
        size = (extra[21] & 3) + 1
    else:
        return False
    data = bytes(packet)
    at = 0
    while at + size <= len(data):
        at += size + int.from_bytes(data[at : at + size], "big")
    return at == len(data) and len(data) > 0


def _decodable_span(pts: list[int], d: _Demuxed, tail: set[int] | None) -> tuple[int, int]:
    """[lo, hi) of the sorted ``pts`` that decode: presented frames before the decoder's first
    one never decode (missing references), nor do those of a damaged last group of pictures
    (``tail``: the timestamps it decodes to; None: not decoded, all taken to decode)."""
    assert d.first is not None
    lo = int(np.searchsorted(pts, d.first.pts)) if d.first.pts is not None else 0
    hi = len(pts)
    if tail is not None and d.gop:
        last_key = d.gop[0].pts if d.gop[0].pts is not None else pts[-1]
        while hi > lo and pts[hi - 1] >= last_key and pts[hi - 1] not in tail:
            hi -= 1
    return lo, hi


def _refuse_short_duration(path: Path, stream: av.VideoStream, pts: list[int], end: int) -> None:
    """Refuse a stream that ends well before the duration its Matroska header declares.

    Raises:
        MediaError: the file holds fewer frames than its ``DURATION`` tag claims.
    """
    claimed = _matroska_duration(stream.metadata.get("DURATION"))
    rate = stream.guessed_rate or stream.average_rate
    if claimed is None or not rate or stream.time_base is None:
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
    # A SideDataContainer: a Mapping by side-data type. Looked up by key: iterating it gives the
    # entries in PyAV 18.1.0 but their types in 18.1.1, and either may be what a fresh install
    # gets. Typed Any: the releases' stubs disagree (18.1.0 calls it a dict of motion vectors).
    side: Any = frame.side_data
    data = side.get(SideDataType.DISPLAYMATRIX)
    if data is None:
        return 0.0, False
    # FFmpeg's 3x3 matrix [a b u; c d v; x y w] (a-d in 16.16 fixed point); the angle is
    # av_display_rotation_get's: counterclockwise, in (-180, 180].
    m = np.frombuffer(bytes(data), dtype=np.int32).astype(np.float64) / 65536
    scale_x, scale_y = np.hypot(m[0], m[3]), np.hypot(m[1], m[4])
    if scale_x == 0 or scale_y == 0:
        return 0.0, False  # Degenerate: FFmpeg reads no rotation from it either.
    turn = -float(np.degrees(np.arctan2(m[1] / scale_y, m[0] / scale_x)))
    return (turn if turn != 0 else 0.0), bool(m[0] * m[4] - m[1] * m[3] < 0)


def _matroska_duration(tag: str | None) -> float | None:
    """Seconds in a Matroska ``DURATION`` tag (``HH:MM:SS.nnnnnnnnn``), or None."""
    if not tag:
        return None
    try:
        hours, minutes, seconds = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return None
