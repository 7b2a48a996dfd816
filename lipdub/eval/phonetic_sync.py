"""Lip sync measured from the dub's phones: the delivered mouth against the mouth the dub asks for.

QC's default sync measure needs no learned audio-visual model (SyncNet's weights are
research-only; see weights/MODEL_CARD.md). The dub's viseme track
(:class:`~lipdub.phonetics.track.VisemeTrack`, from the bundled Apache-2.0 phone recognizer)
says per frame which mouth the dub asks for; :func:`expected_opening` turns that, and how loud
the dub is, into how far the mouth should open. QC measures how far the delivered mouth *is*
open (the inner-lip gap on the output's landmarks). A mouth that says the dub rises and falls
with it:

    r(L) = Pearson( m'(t), e'(t + L) )   over the frames where both are known, |L| ≤ MAX_LAG

where ' is a high-pass (each signal less its running median over :data:`HIGH_PASS_S`): the
landmarks' slow drift with head pose and distance is no speech, and the dub's phrasing (a long
pause) would otherwise outweigh its syllables.

``r(0)`` is the sync at the delivered alignment. The best lag is the A/V offset: positive when
the audio is late (the mouth shows at t what the dub says at t + L), as SyncNet's offset.
Its confidence is :func:`~lipdub.eval.qc_checks.offset_peak` of −r: how far the best lag stands
above every rival more than two frames from it, over its height above the median lag; 0 where
the best lag lies within two frames of the search's edge, whose far side is not seen (a slope
that rises out of the range is no peak: unrelated speech against a real mouth gave one).

Measured on real footage driven by its own speech shifted by known amounts, and by unrelated
speech (``bench/phonetic_sync.py``, bench/results.md "phonetic sync").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from lipdub.eval.qc_checks import PEAK_NEIGHBOURS, offset_peak
from lipdub.phonetics.track import VisemeTrack
from lipdub.phonetics.visemes import Viseme

#: Lags searched either way, frames (as SyncNet's offset search, syncnet_python's vshift).
MAX_LAG = 15
#: Fewest frames with both a measured mouth and an expected opening, at every lag searched,
#: for the measure to mean anything (a second and a bit at 25 fps).
MIN_PAIRS = 30
#: Below this standard deviation (either signal, at lag 0) the measure is undefined: a silent
#: dub asks for no movement, a frozen mouth makes none.
MIN_STD = 1e-4
#: How far each viseme class opens the mouth, 0 (closed) .. 1 (open jaw). /a/ opens the jaw;
#: spread and rounded vowels and the tongue's consonants part the lips about half as far;
#: f/v holds the lower lip at the teeth. A p/b/m closure frame is 0, whatever else is heard.
OPENING_BY_CLASS: dict[Viseme, float] = {
    Viseme.NEUTRAL: 0.5,
    Viseme.CLOSED: 0.0,
    Viseme.LIP_TEETH: 0.25,
    Viseme.ROUNDED: 0.5,
    Viseme.OPEN: 1.0,
    Viseme.SPREAD: 0.5,
}
#: Frames before each p/b/m that ask for closed lips too (the lips close before the burst).
CLOSURE_LEAD = 1
#: Smoothing of the expected opening over time ([¼, ½, ¼]): a jaw moves over several frames,
#: and the held phone classes step from one frame to the next.
SMOOTH = (0.25, 0.5, 0.25)
#: Loudness (dBFS) at which the dub asks for no opening at all; the opening grows linearly to
#: full at 0 dBFS. A stressed, loud syllable opens the jaw wider than a murmured one.
FLOOR_DB = -60.0
#: Window of the running median each signal loses before correlation, seconds (module doc):
#: about two syllables. Chosen on the train split of ../shared/data (bench/phonetic_sync.py:
#: own speech shifted by ±3/±6 frames, the offset moved with the shift in 141 of 159 cases at
#: 0.5 s; with the window changed on the same data, 132 at 1 s and 110 with no high-pass).
HIGH_PASS_S = 0.5


@dataclass(frozen=True)
class PhoneticSync:
    """The result of :func:`phonetic_sync`."""

    r0: float  # Pearson r at lag 0 (the delivered alignment).
    offset: int  # Lag of the highest r, frames; > 0: the audio is late.
    r_best: float  # r at that lag.
    peak: float  # Confidence of that lag, 0..1 (see the module doc).
    pairs: int  # Frames measured at lag 0.
    curve: np.ndarray  # (2·MAX_LAG + 1,) r per lag, from −MAX_LAG.


def expected_opening(visemes: VisemeTrack, loudness_db: np.ndarray) -> np.ndarray:
    """(F,) how far the dub asks the mouth to open per frame, 0..1 (module doc).

    The class posteriors weigh :data:`OPENING_BY_CLASS` (where the dub is silent they sum to
    about 0: silence asks for a closed mouth), smoothed by :data:`SMOOTH`, times the dub's
    loudness above :data:`FLOOR_DB`; each p/b/m's frame and the :data:`CLOSURE_LEAD` frames
    before it are 0.

    Arguments:
        visemes: the dub's viseme track.
        loudness_db: (F,) the dub's loudness per frame (:func:`~lipdub.media.audio.
            loudness_per_frame`), frames as the track's.
    """
    weights = np.zeros(len(visemes.classes), np.float64)
    for cls, value in OPENING_BY_CLASS.items():
        weights[int(cls)] = value
    e = np.asarray(visemes.posteriors, np.float64) @ weights
    if len(e) >= len(SMOOTH):
        e = np.convolve(np.pad(e, 1, mode="edge"), np.asarray(SMOOTH), mode="valid")
    loud = np.zeros(len(e))
    n = min(len(e), len(loudness_db))
    loud[:n] = np.clip((np.asarray(loudness_db[:n], np.float64) - FLOOR_DB) / -FLOOR_DB, 0, 1)
    e = e * loud
    e[visemes.closed_frames(CLOSURE_LEAD)] = 0.0
    return e


def high_pass(x: np.ndarray, window: int) -> np.ndarray:
    """``x`` less its running median over ``window`` frames (NaN stays NaN; the median runs
    over the known values, bridged linearly)."""
    x = np.asarray(x, np.float64)
    known = np.isfinite(x)
    if known.sum() < 2:
        return x.copy()
    bridged = np.interp(np.arange(len(x)), np.flatnonzero(known), x[known])
    base = median_filter(bridged, size=max(1, window), mode="nearest")
    return np.where(known, x - base, np.nan)


def phonetic_sync(opening: np.ndarray, expected: np.ndarray, fps: float) -> PhoneticSync | None:
    """Correlate the measured opening with the expected one over lags ±:data:`MAX_LAG`.

    Arguments:
        opening: (T,) the delivered mouth's opening per frame, IOD (NaN where not measured).
        expected: (F,) :func:`expected_opening` of the dub, from the same first frame.
        fps: the frame rate (the high-pass's window is :data:`HIGH_PASS_S`).

    Returns:
        None where the measure is undefined: fewer than :data:`MIN_PAIRS` frames at some lag,
        or a signal that does not move (a silent dub; a mouth that was not measured).
    """
    window = 2 * round(HIGH_PASS_S * fps / 2) + 1  # Odd: centred.
    m = high_pass(np.asarray(opening, np.float64), window)
    e = high_pass(np.asarray(expected, np.float64), window)
    lags = np.arange(-MAX_LAG, MAX_LAG + 1)
    curve = np.zeros(len(lags))
    pairs0 = 0
    for k, lag in enumerate(lags):
        t = np.arange(len(m))
        ok = np.isfinite(m) & (t + lag >= 0) & (t + lag < len(e))
        a, b = m[ok], e[t[ok] + lag]
        if len(a) < MIN_PAIRS:
            return None
        if lag == 0:
            pairs0 = len(a)
            if a.std() < MIN_STD or b.std() < MIN_STD:
                return None
        curve[k] = _pearson(a, b)
    best = int(np.argmax(curve))
    inside = abs(int(lags[best])) <= MAX_LAG - PEAK_NEIGHBOURS
    return PhoneticSync(
        r0=float(curve[MAX_LAG]),
        offset=int(lags[best]),
        r_best=float(curve[best]),
        peak=offset_peak(-curve) if inside else 0.0,
        pairs=pairs0,
        curve=curve,
    )


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r (0 where either side is constant)."""
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return 0.0 if den < 1e-12 else float((a * b).sum() / den)
