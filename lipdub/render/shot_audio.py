"""The dub as a shot hears it: decoded once, offset and gain applied, fitted to the shot's
length; and what the output carries (the dub, the given mix, or the stems summed)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from lipdub.config.shots import Dub, Shot
from lipdub.media import audio as audio_io
from lipdub.media.mux import fit_channels


@functools.lru_cache(maxsize=4)
def _decoded(path: Path, mtime_ns: int) -> audio_io.Audio:
    """A dub decoded once per shot, though the mux, each track and QC all read it (never
    mutated in place: offset, gain and fit return new arrays). ``mtime_ns`` keys out edits."""
    return audio_io.load_audio(path)


def dub_audio(shot: Shot, dub: Dub, path: Path) -> tuple[audio_io.Audio, str | None]:
    """``path`` decoded, offset and gain applied, fitted to the shot's length.

    A sub-shot of ``range: auto`` hears its own part of the dub: the dub is fitted to the whole
    span it covers (:attr:`Shot.dub_span`; that is what ``audio_fit`` judges), then cut from the
    sub-shot's first frame, so that the sub-shots' audio laid end to end is the whole dub.
    """
    raw = _decoded(path.resolve(), path.stat().st_mtime_ns)
    shifted = audio_io.apply_offset_gain(raw, dub.offset_s, dub.gain_db)
    first, last = shot.dub_frames
    rate = shifted.rate
    samples = audio_io.samples_for_frames(last - first, shot.fps, rate)
    fitted, warning = audio_io.fit_to_length(
        shifted, samples, shot.settings.audio_fit, f"shot {shot.id} dub {dub.name} ({path.name})"
    )
    if (first, last) == (shot.start, shot.stop):
        return fitted, warning
    a = audio_io.samples_for_frames(shot.start - first, shot.fps, rate)
    b = audio_io.samples_for_frames(shot.stop - first, shot.fps, rate)
    return audio_io.Audio(np.ascontiguousarray(fitted.samples[:, a:b]), rate), warning


def output_audio(shot: Shot, dub: Dub) -> tuple[audio_io.Audio, list[str]]:
    """What the output file carries: the dub, the given mix, or the stems summed; with every
    channel the output's container can carry (a 5.1 dub stays 5.1 in MOV/MKV), else downmixed
    to stereo with a warning (:func:`~lipdub.media.mux.fit_channels`)."""
    warnings: list[str] = []
    given = dub.mix or dub.audio  # A mix given wins over the dub.
    if given is not None:
        audio, warning = dub_audio(shot, dub, given)
        warnings += [warning] if warning else []
    else:
        fitted = []
        for path in dub.stems.values():
            stem, warning = dub_audio(shot, dub, path)
            fitted.append(stem)
            warnings += [warning] if warning else []
        audio = audio_io.mix(fitted)
    audio, warning = fit_channels(dub.output, audio)
    return audio, warnings + ([warning] if warning else [])
