"""Audio: decode any common format, apply a shot's offset and gain, fit it to the shot, resample.

Samples are float32 arrays shaped (channels, samples) at the file's own rate; the dub is kept at
its own rate for the output and resampled to 16 kHz mono only for the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from lipdub.errors import ConfigError, MediaError

log = logging.getLogger(__name__)

MODEL_RATE = 16_000  # The model's audio rate (DESIGN.md: 16 kHz mono).

#: A frame whose dub loudness is below this (dBFS, RMS over the frame) counts as silent.
SILENT_DB = -45.0
#: How a dub whose length differs from the shot's is made to fit (manifest key `audio_fit`).
FIT_POLICIES = ("error", "pad", "trim", "pad-trim")
#: Samples an MP3 decode starts late by when the file has no Xing/LAME header to say so: LAME's
#: encoder delay (576) plus the MP3 decoder's own (529). With the header FFmpeg trims them.
MP3_PRIMING = 576 + 529
#: Samples a raw ADTS AAC stream starts late by: one frame of encoder priming, which only an
#: MP4 edit list would carry (FFmpeg trims it from an .m4a that has one).
AAC_PRIMING = 1024


#: The layout N channels are written with (FFmpeg's default layout for N: the order decoders
#: hand channels out in, e.g. 5.1 = FL FR FC LFE BL BR).
CHANNEL_LAYOUTS = {
    1: "mono",
    2: "stereo",
    3: "3.0",
    4: "4.0",
    5: "5.0",
    6: "5.1",
    7: "6.1",
    8: "7.1",
}


@dataclass(frozen=True)
class Audio:
    """Decoded audio: float32 samples in [-1, 1], shaped (channels, samples)."""

    samples: np.ndarray  # (C, N) float32.
    rate: int  # Samples per second.

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.samples.shape[1] / self.rate

    @property
    def channels(self) -> int:
        """Number of channels."""
        return self.samples.shape[0]


def load_audio(path: str | Path, stream_index: int = 0) -> Audio:
    """Decode an audio file (wav, flac, mp3, m4a, or a video's audio track) at its own rate.

    Raises:
        MediaError: missing file, no audio stream, or undecodable data.
    """
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: not a readable audio file ({exc.strerror or exc})") from exc
    with container:
        if len(container.streams.audio) <= stream_index:
            raise MediaError(f"{path}: has no audio stream")
        stream = container.streams.audio[stream_index]
        rate = stream.codec_context.sample_rate or stream.rate
        channels = stream.codec_context.channels or 1
        layout = "mono" if channels == 1 else "stereo" if channels == 2 else None
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        priming = priming_samples(
            stream.codec_context.name, container.format.name, stream.start_time
        )
        chunks = []
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
        except av.error.FFmpegError as exc:
            raise MediaError(f"{path}: audio decode failed ({exc})") from exc
    if not chunks:
        raise MediaError(f"{path}: the audio stream is empty")
    samples = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    return Audio(samples=samples[:, priming:], rate=int(rate))


def priming_samples(codec: str, container_format: str, start_time: int | None) -> int:
    """Encoder/decoder delay at the start of a decoded stream that FFmpeg left in (0: none).

    The same speech in wav, flac, mp3 and m4a must start on the same sample, or everything timed
    from the dub (the model's mouth, QC's AV offset) moves with the container. FFmpeg already
    trims the delay an MP3's LAME header or an MP4's edit list declares (it then reports the
    MP3 stream as starting late, ``start_time`` > 0); what is left is an MP3 without that header
    and a raw ADTS AAC stream, whose delays are the encoders' standard ones.

    Arguments:
        codec: the decoder's name (``mp3float``, ``aac``...).
        container_format: the demuxer's name (``mp3``, ``aac``, ``mov,mp4,...``).
        start_time: the stream's start time in its time base (None when unknown).
    """
    if codec.startswith("mp3") and container_format == "mp3" and not start_time:
        return MP3_PRIMING
    if codec == "aac" and container_format == "aac":
        return AAC_PRIMING
    return 0


def resample(audio: Audio, rate: int, mono: bool = False) -> Audio:
    """Resample (and optionally down-mix to mono) with FFmpeg's resampler."""
    samples = audio.samples.mean(axis=0, keepdims=True) if mono else audio.samples
    if rate == audio.rate:
        return Audio(np.ascontiguousarray(samples, dtype=np.float32), rate)
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    if samples.shape[0] > 2:
        samples, layout = samples.mean(axis=0, keepdims=True), "mono"
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout=layout)
    frame.sample_rate = audio.rate
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    out = [f.to_ndarray() for f in resampler.resample(frame)]
    out += [f.to_ndarray() for f in resampler.resample(None)]
    result = np.concatenate(out, axis=1) if out else np.zeros((samples.shape[0], 0), np.float32)
    expected = round(samples.shape[1] * rate / audio.rate)
    result = _fit_length(result, expected)
    return Audio(result.astype(np.float32, copy=False), rate)


def to_model_audio(audio: Audio) -> np.ndarray:
    """The model's input: 16 kHz mono float32, shaped (N,)."""
    return resample(audio, MODEL_RATE, mono=True).samples[0]


def apply_offset_gain(audio: Audio, offset_s: float, gain_db: float) -> Audio:
    """Shift by ``offset_s`` (positive: the dub starts later, silence first) and apply gain."""
    shift = round(offset_s * audio.rate)
    samples = audio.samples
    if shift > 0:
        samples = np.pad(samples, ((0, 0), (shift, 0)))
    elif shift < 0:
        samples = samples[:, -shift:]
    if gain_db:
        samples = samples * np.float32(10 ** (gain_db / 20))
    return Audio(np.ascontiguousarray(samples, dtype=np.float32), audio.rate)


def samples_for_frames(frames: int, fps: Fraction, rate: int) -> int:
    """Number of audio samples that span ``frames`` video frames exactly (rounded)."""
    return round(Fraction(frames) / fps * rate)


def fit_to_length(audio: Audio, samples: int, policy: str, what: str) -> tuple[Audio, str | None]:
    """Make ``audio`` exactly ``samples`` long following ``policy``.

    Returns the fitted audio and a warning (or None when it already fit within one sample).

    Raises:
        ConfigError: the lengths differ and the policy forbids the needed change.
    """
    if policy not in FIT_POLICIES:
        raise ConfigError(f"audio_fit must be one of {', '.join(FIT_POLICIES)}, got {policy!r}")
    have = audio.samples.shape[1]
    diff_s = (have - samples) / audio.rate
    if abs(have - samples) <= 1:
        return Audio(_fit_length(audio.samples, samples), audio.rate), None
    longer = have > samples
    allowed = (
        policy == "pad-trim" or (policy == "trim" and longer) or (policy == "pad" and not longer)
    )
    if not allowed:
        fix = "trim" if longer else "pad"
        raise ConfigError(
            f"{what}: dub is {abs(diff_s):.3f} s {'longer' if longer else 'shorter'} than the "
            f"shot; "
            f"set audio_fit: {fix} (or pad-trim) to {fix} it, or fix the edit"
        )
    verb = "trimmed" if longer else "padded with silence"
    warning = f"{what}: dub {verb} by {abs(diff_s):.3f} s to match the shot"
    return Audio(_fit_length(audio.samples, samples), audio.rate), warning


def mix(tracks: list[Audio]) -> Audio:
    """Sum several stems (resampled to the first one's rate) into one mix, peak-limited to 1."""
    if not tracks:
        raise ValueError("nothing to mix")
    rate = tracks[0].rate
    channels = max(t.channels for t in tracks)
    parts = [resample(t, rate) for t in tracks]
    n = max(p.samples.shape[1] for p in parts)
    out = np.zeros((channels, n), np.float32)
    for p in parts:
        s = (
            np.broadcast_to(p.samples, (channels, p.samples.shape[1]))
            if p.channels == 1
            else p.samples
        )
        out[: s.shape[0], : s.shape[1]] += s
    peak = float(np.abs(out).max(initial=0.0))
    if peak > 1.0:
        log.warning("stem mix peaks at %.2f; scaled down to avoid clipping", peak)
        out /= peak
    return Audio(out, rate)


def _fit_length(samples: np.ndarray, n: int) -> np.ndarray:
    if samples.shape[1] >= n:
        return np.ascontiguousarray(samples[:, :n])
    return np.pad(samples, ((0, 0), (0, n - samples.shape[1])))


def save_wav(audio: Audio, path: Path) -> None:
    """Write ``audio`` as 16-bit PCM WAV, every channel (up to 7.1: :data:`CHANNEL_LAYOUTS`)."""
    layout = CHANNEL_LAYOUTS[audio.channels]
    pcm = (np.clip(audio.samples, -1.0, 1.0) * 32767).astype(np.int16)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("pcm_s16le", rate=audio.rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm.T).reshape(1, -1), format="s16", layout=layout
        )
        frame.sample_rate = audio.rate
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def loudness_per_frame(audio_16k: np.ndarray, frames: int, fps: Fraction) -> np.ndarray:
    """RMS loudness in dBFS of model-rate audio over each video frame's time span."""
    out = np.full(frames, -120.0)
    for i in range(frames):
        a = round(Fraction(i) / fps * MODEL_RATE)
        b = round(Fraction(i + 1) / fps * MODEL_RATE)
        seg = audio_16k[a:b]
        if seg.size:
            rms = float(np.sqrt(np.mean(np.square(seg, dtype=np.float64))))
            out[i] = 20 * np.log10(max(rms, 1e-6))
    return out
