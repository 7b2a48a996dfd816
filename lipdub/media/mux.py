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
from lipdub.media.audio import Audio

#: Audio frames are written in chunks of this many samples.
AUDIO_CHUNK = 1024

#: Containers that can carry PCM audio (the dub bit-exact at its own rate, no codec loss).
PCM_CONTAINERS = (".mov", ".mkv")

#: Sample rates AAC (the MP4 audio codec) can carry.
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)

#: 24-bit PCM stored in 32-bit words; this keeps full scale just inside the integer range.
S32_SCALE = 2**31 - 256


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
        samples = audio.samples if audio.channels <= 2 else audio.samples[:2]
        self._layout = "mono" if samples.shape[0] == 1 else "stereo"
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
