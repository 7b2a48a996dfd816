"""QC's clean sync measure (issue 25): the mouth's opening against the dub's visemes finds a known
A/V offset, says nothing on a silent dub, and quotes the JSON's numbers."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from lipdub.eval.phonetic_sync import MAX_LAG, expected_opening, phonetic_sync
from lipdub.eval.qc import DubQC, _judge_sync
from lipdub.phonetics.track import Closure, VisemeTrack
from lipdub.phonetics.visemes import CLASSES, Viseme

FPS = Fraction(25)
FRAMES = 250


def _speech(frames: int, seed: int = 0) -> tuple[np.ndarray, list[int], np.ndarray]:
    """Syllable-like viseme posteriors (a vowel or a consonant every 2–6 frames, pauses between
    phrases), the frames of their p/b/m, and the loudness per frame (dBFS)."""
    rng = np.random.default_rng(seed)
    post = np.zeros((frames, len(CLASSES)), np.float32)
    loud = np.full(frames, -90.0)
    closures: list[int] = []
    t = 3
    while t < frames - 8:
        if rng.random() < 0.12:  # A pause.
            t += int(rng.integers(8, 20))
            continue
        n = int(rng.integers(2, 7))
        cls = rng.choice(
            [Viseme.OPEN, Viseme.SPREAD, Viseme.ROUNDED, Viseme.NEUTRAL, Viseme.CLOSED]
        )
        if cls == Viseme.CLOSED:
            closures.append(t)
            post[t : t + n, int(Viseme.NEUTRAL)] = 0.9  # As the track stores a p/b/m's span.
        else:
            post[t : t + n, int(cls)] = 0.9
        loud[t : t + n] = rng.uniform(-30, -12)
        t += n
    return post, closures, loud


def _track(post: np.ndarray, closures: list[int]) -> VisemeTrack:
    return VisemeTrack(
        post, tuple(Closure(f, f / 25, "p", 1.0) for f in closures), "recognition", "test"
    )


def _late(x: np.ndarray, k: int, fill: float) -> np.ndarray:
    """``x`` moved ``k`` frames later (earlier when negative), the gap filled with ``fill``."""
    out = np.full_like(x, fill)
    if k >= 0:
        out[k:] = x[: len(x) - k]
    else:
        out[:k] = x[-k:]
    return out


def _mouth(seed: int = 1) -> tuple[np.ndarray, VisemeTrack, np.ndarray]:
    """A mouth that says a constructed dub (its opening follows the dub's visemes, with landmark
    noise and a slow drift of the head), and that dub's track and loudness."""
    post, closures, loud = _speech(FRAMES)
    truth = expected_opening(_track(post, closures), loud)
    rng = np.random.default_rng(seed)
    drift = 0.05 * np.sin(np.arange(FRAMES) / 40.0)
    opening = 0.25 * truth + drift + rng.normal(0, 0.02, FRAMES)
    return opening, _track(post, closures), loud


def test_a_known_shift_is_found_with_its_sign() -> None:
    opening, _, _ = _mouth()
    post, closures, loud = _speech(FRAMES)
    for k in (-6, -3, 0, 3, 6, 12):
        # The dub k frames late: its phones (and loudness) come k frames after the mouth's.
        late = _track(_late(post, k, 0.0), [c + k for c in closures if 0 <= c + k < FRAMES])
        res = phonetic_sync(opening, expected_opening(late, _late(loud, k, -90.0)), 25.0)
        assert res is not None
        assert res.offset == k, (k, res.offset, res.curve.round(2))
        assert res.peak >= 0.5 and res.r_best > 0.5
        assert res.curve.shape == (2 * MAX_LAG + 1,)
    # At the search's edge the best lag's far side is unseen: found, but no confidence in it.
    late = _track(_late(post, 14, 0.0), [c + 14 for c in closures if c + 14 < FRAMES])
    res = phonetic_sync(opening, expected_opening(late, _late(loud, 14, -90.0)), 25.0)
    assert res is not None and res.offset == 14 and res.peak == 0.0
    # Another dub than the one the mouth says: no lag stands out.
    other_post, other_closures, other_loud = _speech(FRAMES, seed=7)
    res = phonetic_sync(
        opening, expected_opening(_track(other_post, other_closures), other_loud), 25.0
    )
    assert res is not None and res.r_best < 0.3


def test_a_silent_dub_or_an_unmeasured_mouth_gives_no_measure_and_no_warning() -> None:
    opening, track, loud = _mouth()
    silent = _track(np.zeros_like(track.posteriors), [])
    assert phonetic_sync(opening, expected_opening(silent, np.full(FRAMES, -120.0)), 25.0) is None
    # A quiet room tone the recognizer still hears something in: below the floor, no opening.
    assert phonetic_sync(opening, expected_opening(track, np.full(FRAMES, -75.0)), 25.0) is None
    assert phonetic_sync(np.full(FRAMES, np.nan), expected_opening(track, loud), 25.0) is None
    short = opening.copy()
    short[40:] = np.nan  # The face is on screen 40 frames: too few at the far lags.
    assert phonetic_sync(short, expected_opening(track, loud), 25.0) is None

    qc = DubQC(shot="s", dub="d", output="o.mkv", frames=FRAMES, fps="25/1", generator="g")
    qc.mouth_opening = [round(float(x), 4) for x in opening]
    _judge_sync(qc, silent, np.full(FRAMES, -120.0), FPS)
    assert qc.av_offset is None and qc.sync_r is None and qc.offset_peak is None
    assert qc.speech_frames == 0 and not qc.warnings


def test_the_warning_quotes_the_json() -> None:
    opening, _, _ = _mouth()
    post, closures, loud = _speech(FRAMES)
    k = 6
    late = _track(_late(post, k, 0.0), [c + k for c in closures if c + k < FRAMES])
    qc = DubQC(shot="s", dub="d", output="o.mkv", frames=FRAMES, fps="25/1", generator="g")
    qc.mouth_opening = [round(float(x), 4) for x in opening]
    _judge_sync(qc, late, _late(loud, k, -90.0), FPS)
    assert qc.av_offset == k and qc.sync_by == "visemes (test)"
    (warning,) = qc.warnings
    assert f"av_offset {qc.av_offset}:" in warning and "audio is late" in warning
    assert f"offset_peak {qc.offset_peak}," in warning
    assert f"offset_r {qc.offset_r};" in warning
    # In sync: measured, and nothing to warn about.
    qc = DubQC(shot="s", dub="d", output="o.mkv", frames=FRAMES, fps="25/1", generator="g")
    qc.mouth_opening = [round(float(x), 4) for x in opening]
    _judge_sync(qc, _track(post, closures), loud, FPS)
    assert qc.av_offset == 0 and qc.sync_r is not None and qc.sync_r > 0.5
    assert not qc.warnings
