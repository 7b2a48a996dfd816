"""A dub's viseme track: per video frame, which mouth the dub asks for; and each p/b/m's frame.

Two ways in, one record out (:class:`VisemeTrack`):

- **Recognition** (no script): the recognizer's CTC posteriors, grouped by viseme class
  (:mod:`lipdub.phonetics.visemes`). CTC marks a phone with a short spike, so each spike's class
  distribution is held until the next spike (at most :data:`HOLD_S`), then averaged over the
  video frame. A p/b/m is a peak of the summed /p b m/ posterior of at least
  :data:`CLOSURE_PEAK` (on eSpeak NG speech in six languages, within 60 ms: precision 0.86,
  recall 0.89; see the constant).
- **Script** (the dub's text): eSpeak NG's rules give its phones, the aligner places them
  (:mod:`lipdub.phonetics.aligner`), and each phone holds its class until the next one. If the
  script does not fit the audio, recognition is used instead and :attr:`VisemeTrack.note` says why.

Both shift the recognizer's spikes back by :data:`~lipdub.phonetics.recognizer.CTC_LAG_S`.
Frames count from the start of the dub audio given (the shot's first frame).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from scipy.signal import find_peaks

from lipdub.phonetics.aligner import MISMATCH_RATIO, script_fit
from lipdub.phonetics.recognizer import CTC_LAG_S, PhoneRecognizer
from lipdub.phonetics.visemes import CLASSES, Viseme, is_bilabial, viseme_of
from lipdub.speech import phonemize

log = logging.getLogger(__name__)

#: A CTC spike's class is held at most this long when no other phone follows (seconds).
HOLD_S = 0.24
#: A 50 fps frame whose non-blank posterior is above this starts a new held phone.
SPIKE = 0.3
#: Smallest peak of the summed /p b m/ posterior taken as a bilabial. eSpeak NG speech, a
#: p/b/m found within 60 ms of its start: on the six bench/visemes.py lines precision 0.74 →
#: 0.85, recall 0.91 → 0.91 from 0.15 to 0.25; on six other sentences 0.82 → 0.87 and 0.90 →
#: 0.88 (the French bench line: 5 false ones at 0.15, 2 at 0.25). Each false one shuts the
#: lips where they stay apart.
CLOSURE_PEAK = 0.25
#: Bilabial peaks closer than this are one closure (seconds).
CLOSURE_MIN_GAP_S = 0.08


@dataclass(frozen=True)
class Script:
    """The words of a dub, and where they came from (for messages)."""

    text: str
    language: str  # eSpeak NG voice / language code ("de", "fr", "pt-br").
    origin: str  # "shots.yaml:14", "audio/de/sh010.txt", "--dub-text".


@dataclass(frozen=True)
class Closure:
    """One p/b/m of the dub: the lips must be closed at its start."""

    frame: int  # Video frame holding the phone's start (from the dub's first frame).
    time_s: float  # The phone's start, seconds.
    phone: str  # The phone ("p", "b", "m"; "" when recognition only knows it is bilabial).
    confidence: float  # Peak posterior (recognition) or 1 (script).


@dataclass(frozen=True)
class VisemeTrack:
    """See the module doc."""

    posteriors: np.ndarray  # (F, C) float32 per video frame, classes as :data:`CLASSES`;
    # a row sums to at most 1, less where the audio gives little evidence. CLOSED is always 0
    # here: p/b/m are the closures below, placed to the frame.
    closures: tuple[Closure, ...]  # Every p/b/m, in time order.
    method: str  # "script" or "recognition".
    recognizer: str  # Which recognizer ran ("hama 1.7.0").
    note: str | None = None  # Why a given script was not used.
    script_fit: float | None = None  # The script's fit (see the aligner), where one was given.
    classes: tuple[str, ...] = field(default=CLASSES)

    def closed_frames(self, lead: int = 1) -> list[int]:
        """Frames that must show closed lips: each closure's frame and the ``lead`` frames before
        it (the lips close before the burst), in order, without repeats."""
        out: set[int] = set()
        for c in self.closures:
            out.update(range(c.frame - lead, c.frame + 1))
        return sorted(f for f in out if 0 <= f < len(self.posteriors))

    def summary(self) -> dict[str, object]:
        """What QC reports about the phonetic front end."""
        return {
            "method": self.method,
            "recognizer": self.recognizer,
            "bilabials": len(self.closures),
            "script_fit": None if self.script_fit is None else round(self.script_fit, 3),
            "note": self.note,
        }


def viseme_track(
    audio_16k: np.ndarray,
    fps: Fraction,
    frames: int,
    recognizer: PhoneRecognizer,
    script: Script | None = None,
) -> VisemeTrack:
    """The viseme track of ``frames`` video frames of 16 kHz mono dub audio (module doc)."""
    lp = recognizer.log_probs(audio_16k)
    rate = recognizer.frame_rate
    if script is not None:
        from_script = _from_script(lp, script, recognizer, fps, frames)
        if isinstance(from_script, VisemeTrack):
            return from_script
        note, fit = from_script
    else:
        note, fit = None, None
    return _from_recognition(lp, recognizer, rate, fps, frames, note, fit)


def _class_matrix(tokens: tuple[str, ...], blank: int) -> np.ndarray:
    """(V, C) 0/1: which class each token belongs to (specials and the blank: none)."""
    m = np.zeros((len(tokens), len(CLASSES)), np.float32)
    for i, t in enumerate(tokens):
        if i != blank and not t.startswith("<") and t.strip() and t not in ",%~":
            m[i, int(viseme_of(t))] = 1.0
    return m


def _to_video(held: np.ndarray, rate: int, fps: Fraction, frames: int) -> np.ndarray:
    """(F, C) means of (N, C) rows at ``rate`` frames/s over each video frame (lag removed).

    The CLOSED column is moved to NEUTRAL: a p/b/m's closure is placed exactly, by
    :attr:`VisemeTrack.closures`; held over the phone's whole span it would ask for closed lips
    on the vowel after it too, and a mouth that stays shut reads as mumbling."""
    held = held.copy()
    held[:, int(Viseme.NEUTRAL)] += held[:, int(Viseme.CLOSED)]
    held[:, int(Viseme.CLOSED)] = 0.0
    n = len(held)
    t = (np.arange(n) + 0.5) / rate - CTC_LAG_S
    k = np.floor(t * float(fps)).astype(np.int64)
    out = np.zeros((frames, held.shape[1]), np.float64)
    count = np.zeros(frames)
    ok = (k >= 0) & (k < frames)
    np.add.at(out, k[ok], held[ok])
    np.add.at(count, k[ok], 1.0)
    return (out / np.maximum(count, 1.0)[:, None]).astype(np.float32)


def _from_recognition(
    lp: np.ndarray,
    rec: PhoneRecognizer,
    rate: int,
    fps: Fraction,
    frames: int,
    note: str | None,
    fit: float | None,
) -> VisemeTrack:
    p = np.exp(lp.astype(np.float64))
    mass = p @ _class_matrix(rec.tokens, rec.blank)  # (N, C)
    speech = mass.sum(1)
    held = np.zeros_like(mass)
    current = np.zeros(mass.shape[1])
    age = 0
    for i in range(len(mass)):
        if speech[i] > SPIKE:
            current, age = mass[i] / speech[i], 0
        else:
            age += 1
            if age > HOLD_S * rate:
                current = np.zeros(mass.shape[1])
        held[i] = current
    bil = mass[:, int(Viseme.CLOSED)]
    peaks, props = find_peaks(
        bil, height=CLOSURE_PEAK, distance=max(1, round(CLOSURE_MIN_GAP_S * rate))
    )
    closures = []
    for i, h in zip(peaks, props["peak_heights"], strict=True):
        time = i / rate - CTC_LAG_S
        frame = int(np.floor(time * float(fps)))
        if 0 <= frame < frames:
            closures.append(Closure(frame, time, "", float(h)))
    return VisemeTrack(
        _to_video(held, rate, fps, frames), tuple(closures), "recognition", rec.name, note, fit
    )


def _from_script(
    lp: np.ndarray, script: Script, rec: PhoneRecognizer, fps: Fraction, frames: int
) -> VisemeTrack | tuple[str, float | None]:
    """The script's track, or (why it was not used, its fit)."""
    phones = [p for word in phonemize(script.text, script.language) for p in word]
    if not phones:
        return f"the script from {script.origin} has no words eSpeak NG can read", None
    try:
        found, fit = script_fit(lp, phones, rec.tokens, rec.blank)
    except ValueError as exc:
        return f"the script from {script.origin} cannot be aligned: {exc}", None
    if fit > MISMATCH_RATIO:
        return (
            f"the script from {script.origin} does not match the dub's audio "
            f"(fit {fit:.2f}, above {MISMATCH_RATIO}); the phones were recognised instead",
            fit,
        )
    rate = rec.frame_rate
    held = np.zeros((len(lp), len(CLASSES)), np.float32)
    starts = [*list(found.frames), len(lp)]
    closures = []
    for k, phone in enumerate(found.phones):
        a = int(starts[k])
        b = min(int(starts[k + 1]), a + int(HOLD_S * rate))
        held[a:b, int(viseme_of(phone))] = 1.0
        if is_bilabial(phone):
            time = a / rate - CTC_LAG_S
            frame = int(np.floor(time * float(fps)))
            if 0 <= frame < frames:
                closures.append(Closure(frame, time, phone, 1.0))
    return VisemeTrack(
        _to_video(held, rate, fps, frames), tuple(closures), "script", rec.name, None, fit
    )
