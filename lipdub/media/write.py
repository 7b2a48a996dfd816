"""Streaming video encode with PyAV: one frame in, one frame out, count/rate/size preserved.

The codec comes from the preset: H.264 for review, ProRes 422 HQ 10-bit for delivery, FFV1 (RGB,
lossless) for checks that need the decoded pixels back bit-exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from lipdub.errors import ConfigError, MediaError
from lipdub.media.audio import Audio
from lipdub.media.mux import AudioMuxer
from lipdub.media.read import SCALE_THREADS

#: Encoder threads, the same on every machine. Left at 0 (FFmpeg's "auto"), the count follows the
#: CPUs this process may use (``sched_getaffinity``), and libx264 makes other bytes with another
#: count: a farm node with a 4-core cgroup and an artist's 16-core workstation wrote different
#: files from the same inputs. ProRes and FFV1 cut each frame into slices whose number this fixes.
ENCODER_THREADS = 4
#: libx264's macroblock tree off. With it on (every preset above ultrafast), the same frames gave
#: other bytes from one encode to the next inside one process, even on one thread with no
#: lookahead thread: the I-frame's slice data differed, and decoded pixels by up to 19/255
#: (the "five renders, five files" of issue 27). The first encode of a process was stable and
#: later ones were not, which points at memory x264 reads without setting it; mbtree=0 or
#: bframes=0 made every encode identical. mbtree=0 costs size, not picture: on 50 frames of two
#: clips, 130 → 161 kB and 209 → 274 kB, RGB PSNR 42.10 → 42.37 and 43.73 → 43.84 dB.
#: ProRes and FFV1 were stable as they are.
X264_DETERMINISTIC = "mbtree=0"
#: libx264's threads: one. It spends less CPU a frame than four frame threads (32.8 against 41.4
#: ms at 1080p, veryfast; same PSNR, a 3 % smaller file), the render pipeline keeps the other
#: cores busy with decode and paste-back (lipdub.render.frame_pass), and ``--jobs`` with shots.
#: Determinism does not hang on it: with X264_DETERMINISTIC, four frame threads gave one file too.
X264_THREADS = 1


@dataclass(frozen=True)
class VideoCodec:
    """How frames are encoded."""

    name: str  # Preset-facing name, e.g. "prores_hq".
    encoder: str  # FFmpeg encoder, e.g. "prores_ks".
    pix_fmt: str  # Encoded pixel format.
    options: tuple[tuple[str, str], ...]  # Encoder options.
    containers: tuple[str, ...]  # File suffixes it may be written into.
    audio_codec: str  # Audio codec used when muxing into this codec's preferred container.


CODECS: dict[str, VideoCodec] = {
    c.name: c
    for c in (
        VideoCodec(
            "h264",
            "libx264",
            "yuv420p",
            # CRF 12: the untouched picture stays within ~1 dB of what a 4:2:0 round trip allows
            # (measured on 512 px and 1080p clips: 41.6 / 44.4 dB RGB PSNR against the decoded
            # source, where CRF 18 gave 39.3 / 43.8); 4:2:0 so that every player opens it.
            # mbtree=0: see X264_DETERMINISTIC.
            (("crf", "12"), ("preset", "medium"), ("x264-params", X264_DETERMINISTIC)),
            (".mp4", ".mov", ".mkv"),
            "aac",
        ),
        VideoCodec(
            "h264_draft",
            "libx264",
            "yuv420p",
            # superfast, not veryfast: the encode is a CPU render's longest stage, and on the six
            # 1080p clips of bench/encoder.py superfast spends 30-48 % less CPU a frame (27-35
            # against 44-55 ms) for the same picture (RGB PSNR against the frames encoded equal
            # or up to 0.2 dB higher); its files are 24-52 % larger, a fair price for review.
            (("crf", "16"), ("preset", "superfast"), ("x264-params", X264_DETERMINISTIC)),
            (".mp4", ".mov", ".mkv"),
            "aac",
        ),
        # ProRes 422 HQ is prores_ks profile 3; 10-bit 4:2:2 as delivered to finishing.
        VideoCodec("prores_hq", "prores_ks", "yuv422p10le", (("profile", "3"),), (".mov",), "pcm"),
        # Lossless RGB: decoding gives back exactly the rgb24 frames that were written.
        VideoCodec("ffv1", "ffv1", "bgr0", (("level", "3"),), (".mkv",), "pcm"),
    )
}


def codec_for(name: str, output: Path) -> VideoCodec:
    """Look up a codec by name and check that ``output``'s container can hold it."""
    try:
        codec = CODECS[name]
    except KeyError:
        raise ConfigError(f"unknown codec {name!r}; choose one of {', '.join(CODECS)}") from None
    if output.suffix.lower() not in codec.containers:
        raise ConfigError(
            f"{output}: codec {name!r} needs one of {', '.join(codec.containers)} "
            f"(got {output.suffix or 'no suffix'})"
        )
    return codec


#: Chroma subsampling of the encoded pixel formats: (horizontal, vertical) factors; a frame's
#: width and height must be multiples of them (4:2:0 halves both, 4:2:2 the width only).
SUBSAMPLING: dict[str, tuple[int, int]] = {"yuv420p": (2, 2), "yuv422p10le": (2, 1)}


def size_problem(codec: VideoCodec, width: int, height: int) -> str | None:
    """Why ``codec`` cannot encode ``width``×``height`` frames as they are (libx264 fails deep
    in ``avcodec_open2`` on an odd size in 4:2:0), or None."""
    sx, sy = SUBSAMPLING.get(codec.pix_fmt, (1, 1))
    if width % sx == 0 and height % sy == 0:
        return None
    need = "width and height" if (sx, sy) == (2, 2) else "width"
    return f"{codec.name!r} ({codec.pix_fmt}) needs an even {need}, the source is {width}×{height}"


def codec_fitting(name: str, output: Path) -> str | None:
    """``name`` if ``output``'s container can hold it, else the first codec of :data:`CODECS`
    that it can (H.264 first: what a user naming ``.mp4`` expects), else None.

    Lets the one-clip form honour the file name the user typed instead of failing mid-job on a
    project preset made for another container.
    """
    suffix = output.suffix.lower()
    if name in CODECS and suffix in CODECS[name].containers:
        return name
    return next((c.name for c in CODECS.values() if suffix in c.containers), None)


class VideoWriter:
    """Encode RGB uint8 frames one at a time into ``path`` at an exact rational frame rate.

    With ``audio`` the dub is muxed alongside, interleaved frame by frame; it should already be
    fitted to the number of frames that will be written (see :mod:`lipdub.media.audio`).
    """

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: Fraction,
        codec: VideoCodec,
        timecode: str | None = None,
        audio: Audio | None = None,
    ) -> None:
        self.path = path
        self.frames_written = 0
        self._size = (height, width)
        try:
            # bitexact: no random file ids or dates, so a re-render of the same inputs gives
            # the same bytes (farm re-runs, Ray vs local, caches keyed by content).
            self._container: av.container.OutputContainer | None = av.open(
                str(path), mode="w", options={"fflags": "+bitexact"}
            )
            stream = self._container.add_stream(codec.encoder, rate=fps)
        except av.error.FFmpegError as exc:
            raise MediaError(f"{path}: cannot open for writing ({exc})") from exc
        assert isinstance(stream, av.VideoStream), f"{codec.encoder}: CODECS holds video encoders"
        stream.width = width
        stream.height = height
        stream.pix_fmt = codec.pix_fmt
        stream.options = dict(codec.options)
        # Bytes independent of the machine (and of its load).
        threads = X264_THREADS if codec.encoder == "libx264" else ENCODER_THREADS
        stream.codec_context.thread_count = threads
        if timecode:
            stream.metadata["timecode"] = timecode
        self._stream = stream
        self._frame_tb = Fraction(1) / fps  # One tick per frame: pts == frame number.
        self._audio = AudioMuxer(self._container, path, audio) if audio is not None else None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(flush=exc_type is None)

    def write(self, frame: np.ndarray) -> None:
        """Encode one (H, W, 3) uint8 RGB frame."""
        self.write_prepared(self.prepare(frame))

    def prepare(self, frame: np.ndarray) -> av.VideoFrame:
        """One (H, W, 3) uint8 RGB frame in the encoder's pixel format, for
        :meth:`write_prepared`. Safe to call from several threads at once (each call converts
        on a scaler of its own), so a pipelined render converts frames beside the encoder
        instead of in its thread: the conversion is a quarter of that thread's time at 1080p."""
        if frame.shape != (*self._size, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"frame must be uint8 {(*self._size, 3)}, got {frame.dtype} {frame.shape}"
            )
        rgb = np.ascontiguousarray(frame)
        # The array's own memory, not a copy: copying into a fresh buffer (from_ndarray) cost as
        # much as the conversion itself at UHD (54 against 34 ms a frame); the same pixels.
        # (An rgb24 encoder would get the array itself: PyAV's reformat to the same format
        # returns its input, so that one copy stays.)
        if self._stream.pix_fmt == "rgb24":
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        else:
            vf = av.VideoFrame.from_numpy_buffer(rgb, format="rgb24")
        # Converted here, on a fixed thread count: left to the encoder, swscale slices the
        # frame by the CPUs ("auto") (lipdub.media.read.SCALE_THREADS).
        return vf.reformat(format=self._stream.pix_fmt, threads=SCALE_THREADS)

    def write_prepared(self, vf: av.VideoFrame) -> None:
        """Encode one frame made by :meth:`prepare` (frames are numbered as they come)."""
        if self._container is None:
            raise ValueError(f"{self.path}: write() after close()")
        vf.pts = self.frames_written
        vf.time_base = self._frame_tb
        self._container.mux(self._stream.encode(vf))
        self.frames_written += 1
        if self._audio is not None:
            self._audio.write_until(float(self.frames_written * self._frame_tb))

    def close(self, flush: bool = True) -> None:
        """Flush the encoder (when ``flush``) and close the file."""
        if self._container is None:
            return
        try:
            if flush:
                self._container.mux(self._stream.encode(None))
                if self._audio is not None:
                    self._audio.finish()
        finally:
            self._container.close()
            self._container = None
