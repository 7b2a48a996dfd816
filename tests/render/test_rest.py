"""Resting mouth on silence: which frames keep the source, which take the rest crop, and how
the hand-overs fade."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from lipdub.analysis.rest import plan_rest, rest_frame
from tests.analysis.test_settings_smoothing import face

LOUD, QUIET = -20.0, -70.0


def lips_apart(openings: list[float]) -> np.ndarray:
    """Landmarks of a frontal face whose inner lips are ``opening`` IODs apart."""
    out = []
    for o in openings:
        lm = face(100.0, 100.0).astype(np.float64)
        iod = np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0))
        upper, lower = [61, 62, 63], [67, 66, 65]  # Facing pairs of inner-lip points.
        lm[lower, 0] = lm[upper, 0]
        lm[upper, 1] = 130.0 - o * iod / 2
        lm[lower, 1] = 130.0 + o * iod / 2
        out.append(lm)
    return np.stack(out).astype(np.float32)


def _plan(loud: list[float], openings: list[float], **kw: float):
    return plan_rest(np.array(loud), lips_apart(openings), Fraction(25), **kw)


def test_weights_sum_to_one_and_speech_is_generated() -> None:
    loud = [LOUD] * 20 + [QUIET] * 20 + [LOUD] * 20
    plan = _plan(loud, [0.2] * 25 + [0.01] * 10 + [0.2] * 25)
    total = plan.generated + plan.rest + plan.source
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    assert np.all(plan.generated[:15] == 1) and np.all(plan.generated[45:] == 1)


def test_a_silent_closed_source_is_kept_exactly_and_an_open_one_rests_on_the_rest_crop() -> None:
    loud = [LOUD] * 10 + [QUIET] * 30 + [LOUD] * 10
    openings = [0.2] * 10 + [0.01] * 15 + [0.25] * 15 + [0.2] * 10  # Closed, then talking.
    plan = _plan(loud, openings)
    assert np.all(plan.source[14:22] == 1)  # Inside the closed part: bit-exact source.
    assert np.all(plan.rest[29:36] == 1)  # Actor talks in the source: the rest crop.
    assert plan.rest_frame is not None and openings[plan.rest_frame] == 0.01
    # Cross-fades, not cuts: every step changes a weight by less than a half.
    for w in (plan.generated, plan.rest, plan.source):
        assert np.abs(np.diff(w)).max() < 0.5


def test_short_gaps_between_words_stay_generated() -> None:
    loud = ([LOUD] * 6 + [QUIET] * 4) * 4  # 0.16 s pauses < MIN_SILENCE_S.
    plan = _plan(loud, [0.01] * 40)
    assert np.all(plan.generated == 1)


def test_a_track_that_never_closes_has_no_rest_crop_and_keeps_generating() -> None:
    plan = _plan([LOUD] * 10 + [QUIET] * 20, [0.3] * 30)
    assert plan.rest_frame is None
    assert np.all(plan.generated == 1) and np.all(plan.rest == 0)


def test_rest_frame_prefers_the_usual_pose_among_the_closed_frames() -> None:
    openings = np.array([0.3] * 36 + [0.02, 0.02, 0.03, 0.03])
    yaws = np.array([0.0] * 36 + [0.6, 0.6, 0.05, 0.05])  # The most closed frames look away.
    assert rest_frame(openings, yaws) == 38


def test_lengths_must_match() -> None:
    with pytest.raises(ValueError, match="differ"):
        plan_rest(np.zeros(3), lips_apart([0.0] * 4), 25)


def test_a_brief_closure_inside_a_pause_rests_instead_of_flashing_the_source() -> None:
    loud = [LOUD] * 5 + [QUIET] * 30 + [LOUD] * 5
    openings = [0.2] * 15 + [0.01] * 3 + [0.2] * 22  # Closed for 3 frames only (< 0.3 s).
    plan = _plan(loud, openings)
    assert np.all(plan.source == 0)
    assert np.all(plan.rest[10:30] == 1)


def test_an_actor_whose_lips_rest_apart_keeps_the_source_in_pauses() -> None:
    loud = [LOUD] * 10 + [QUIET] * 20 + [LOUD] * 10
    plan = _plan(loud, [0.12] * 40)  # A smile: lips always a little apart (the demo's photo).
    assert np.all(plan.source[14:26] == 1)
    assert np.all(plan.generated[:6] == 1)
