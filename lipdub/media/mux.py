"""Carry the dub in the output file: audio written beside the video frames, at the dub's own rate.

:class:`AudioMuxer` is driven by :class:`~lipdub.media.write.VideoWriter`: after each video frame it
writes the audio up to that frame's end time, so the file is interleaved as it is encoded and no
second pass (or second temporary file) is needed.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from lipdub.errors import MediaError
from lipdub.media.audio import CHANNEL_LAYOUTS, Audio

#: Audio frames are written in chunks of this many samples.
AUDIO_CHUNK = 1024

#: Containers that can carry PCM audio (the dub bit-exact at its own rate, no codec loss).
PCM_CONTAINERS = (".mov", ".mkv")

#: Sample rates AAC (the MP4 audio codec) can carry.
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)

#: 24-bit PCM stored in 32-bit words; this keeps full scale just inside the integer range.
S32_SCALE = 2**31 - 256


LAYOUTS = CHANNEL_LAYOUTS
#: Channel counts FFmpeg's AAC encoder (MP4) takes; PCM (MOV, MKV) takes every one of LAYOUTS.
AAC_CHANNELS = (1, 2, 3, 4, 5, 6, 8)


def carried_channels(output: Path, channels: int) -> int:
    """How many of a dub's ``channels`` ``output``'s container carries as they are: all where
    its codec has a layout for them (PCM in MOV/MKV up to 7.1; AAC in MP4: 1-6 and 8), else 2
    (the caller downmixes, see :func:`fit_channels`)."""
    pcm = output.suffix.lower() in PCM_CONTAINERS
    if channels in LAYOUTS and (pcm or channels in AAC_CHANNELS):
        return channels
    return min(channels, 2)


def fit_channels(output: Path, audio: Audio) -> tuple[Audio, str | None]:
    """``audio`` with the channels ``output`` can carry: unchanged where it can carry them all,
    else downmixed to stereo by FFmpeg's matrix (centre and surrounds folded into left and
    right, not dropped), with a warning saying so."""
    keep = carried_channels(output, audio.channels)
    if keep == audio.channels:
        return audio, None
    source = LAYOUTS.get(audio.channels)
    if source is None:  # No named layout: an equal-power fold of every channel into both.
        mono = audio.samples.sum(0, keepdims=True) / np.sqrt(audio.channels)
        mixed: np.ndarray = np.repeat(np.clip(mono, -1.0, 1.0), 2, 0).astype(np.float32)
    else:
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(audio.samples, np.float32), format="fltp", layout=source
        )
        frame.sample_rate = audio.rate
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=audio.rate)
        parts = [f.to_ndarray() for f in resampler.resample(frame)]
        parts += [f.to_ndarray() for f in resampler.resample(None)]
        mixed = np.concatenate(parts, axis=1)[:, : audio.samples.shape[1]].astype(np.float32)
    warning = (
        f"{output.name}: the dub's {audio.channels} channels were downmixed to stereo "
        f"({output.suffix} cannot carry them as they are; .mov or .mkv keep every channel)"
    )
    return Audio(np.ascontiguousarray(mixed, np.float32), audio.rate), warning


def audio_codec_for(output: Path, audio: Audio) -> tuple[Literal["pcm_s24le", "aac"], str]:
    """(encoder, sample format) for the dub in ``output``'s container.

    PCM where the container allows it (MOV, MKV), so the dub is carried at its own rate with no
    codec loss; AAC in MP4, still at the dub's own rate.

    Raises:
        MediaError: the container cannot carry the dub's sample rate.
    """
    if output.suffix.lower() in PCM_CONTAINERS:
        return "pcm_s24le", "s32"
    if audio.rate not in AAC_RATES:
        raise MediaError(
            f"{output}: MP4 needs AAC, which cannot carry {audio.rate} Hz; use .mov or .mkv"
        )
    return "aac", "fltp"


class AudioMuxer:
    """Writes one audio track into an open output container, in time order."""

    def __init__(self, container: av.container.OutputContainer, output: Path, audio: Audio):
        encoder, self._fmt = audio_codec_for(output, audio)
        if carried_channels(output, audio.channels) != audio.channels:
            raise MediaError(  # fit_channels first: never drop channels silently.
                f"{output}: cannot carry {audio.channels} audio channels; downmix them first"
            )
        samples = audio.samples
        self._layout = LAYOUTS[samples.shape[0]]
        self._container = container
        self._samples = samples
        self._rate = audio.rate
        self._written = 0
        self._stream = container.add_stream(encoder, rate=audio.rate, layout=self._layout)
        self._stream.format = self._fmt

    def write_until(self, seconds: float | None) -> None:
        """Write the samples up to ``seconds`` (all remaining ones when None)."""
        total = self._samples.shape[1]
        limit = total if seconds is None else min(total, round(seconds * self._rate))
        try:
            while self._written < limit:
                n = min(AUDIO_CHUNK, limit - self._written)
                frame = self._frame(self._samples[:, self._written : self._written + n])
                frame.pts = self._written
                self._container.mux(self._stream.encode(frame))
                self._written += n
        except av.error.FFmpegError as exc:
            raise MediaError(f"audio mux failed ({exc})") from exc

    def finish(self) -> None:
        """Write what is left and flush the encoder."""
        self.write_until(None)
        self._container.mux(self._stream.encode(None))

    def _frame(self, chunk: np.ndarray) -> av.AudioFrame:
        if self._fmt == "s32":
            data = (np.clip(chunk, -1.0, 1.0) * S32_SCALE).astype(np.int32)
            packed = np.ascontiguousarray(data.T).reshape(1, -1)  # Interleaved samples.
            frame = av.AudioFrame.from_ndarray(packed, format="s32", layout=self._layout)
        else:
            planar = np.ascontiguousarray(chunk, dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=self._layout)
        frame.sample_rate = self._rate
        frame.time_base = Fraction(1, self._rate)
        return frame
