"""Selection: the Viterbi pass finds the known best path, prefers runs, and fades at joins."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub.exemplar.select import (
    APART_MAX,
    APART_MIN,
    REPLAY_FRAMES,
    SelectWeights,
    apart_costs,
    apart_margin,
    fade_plan,
    match_costs,
    replay_costs,
    require_closed,
    select_path,
    viseme_costs_over_time,
)


def brute_force(unary: np.ndarray, follows: np.ndarray, w: SelectWeights) -> float:
    """Cost of the best path by enumerating every path (tiny problems only)."""
    t_len, n = unary.shape
    best = np.inf
    for path in np.ndindex(*(n,) * t_len):
        cost = unary[0, path[0]]
        for t in range(1, t_len):
            a, b = path[t - 1], path[t]
            cost += unary[t, b]
            if b == a:
                cost += w.hold
            elif b == a + 1 and follows[b]:
                cost -= w.run_bonus
            else:
                cost += w.jump
        best = min(best, cost)
    return best


def path_cost(path: np.ndarray, unary: np.ndarray, follows: np.ndarray, w: SelectWeights) -> float:
    cost = unary[0, path[0]]
    for t in range(1, len(path)):
        a, b = path[t - 1], path[t]
        cost += unary[t, b]
        cost += w.hold if b == a else (-w.run_bonus if b == a + 1 and follows[b] else w.jump)
    return float(cost)


@pytest.mark.parametrize("seed", range(5))
def test_viterbi_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    unary = rng.uniform(0, 3, (5, 4))
    follows = np.array([False, True, True, False])
    w = SelectWeights(jump=1.5, hold=0.4, run_bonus=0.3)
    path = select_path(unary, follows, w)
    assert path_cost(path, unary, follows, w) == pytest.approx(brute_force(unary, follows, w))


def test_runs_through_consecutive_frames_when_targets_follow_them() -> None:
    # Bank: two runs of a 1-D "opening" ramp; the target follows the second run exactly but the
    # first run is a near copy, offset by a little noise. Continuity keeps one run, no flicker.
    ramp = np.linspace(0, 1, 20)
    bank = np.concatenate([ramp + 0.01, ramp])[:, None]
    follows = np.ones(40, bool)
    follows[[0, 20]] = False
    target = ramp[:, None]
    w = SelectWeights()
    flat = np.zeros((20, 2))
    unary = match_costs(
        target,
        bank,
        np.array([0.1]),
        flat,
        np.zeros((40, 2)),
        np.zeros((20, 3)),
        np.zeros((40, 3)),
        w,
    )
    path = select_path(unary, follows, w)
    assert np.all(np.diff(path) == 1), path  # One unbroken run.
    assert path[0] == 20  # The exact one.


def test_forbidden_frames_are_never_chosen() -> None:
    unary = np.zeros((6, 6))
    unary[np.arange(6), np.arange(6)] = np.inf  # Holdout: never the frame itself.
    follows = np.r_[False, np.ones(5, bool)]
    path = select_path(unary, follows, SelectWeights())
    assert np.all(path != np.arange(6))


def test_costs_weigh_pose_and_light() -> None:
    w = SelectWeights(yaw=0.1, pitch=0.1, light=10.0)
    shape = np.zeros((1, 2))
    bank_shape = np.zeros((3, 2))
    pose_t = np.array([[0.0, 1.0]])
    pose_b = np.array([[0.0, 1.0], [0.1, 1.0], [0.0, 1.0]])
    light_t = np.array([[100.0, 100, 100]])
    light_b = np.array([[100.0, 100, 100], [100, 100, 100], [110, 100, 100]])
    c = match_costs(shape, bank_shape, np.ones(2), pose_t, pose_b, light_t, light_b, w)
    assert c[0] == pytest.approx([0.0, 1.0, 1.0])


def test_a_blurred_bank_frame_costs_per_halving_of_sharpness() -> None:
    """Of two frames with the same mouth, the one with lips as sharp as usual for its footage is
    preferred; being sharper than usual earns nothing (it is not a better match)."""
    w = SelectWeights(sharp=1.0)
    zeros = np.zeros((3, 2))
    c = match_costs(
        np.zeros((1, 2)),
        zeros,
        np.ones(2),
        np.zeros((1, 2)),
        zeros,
        np.zeros((1, 3)),
        np.zeros((3, 3)),
        w,
        np.array([1.0, 0.25, 2.0]),
    )
    assert c[0] == pytest.approx([0.0, 2.0, 0.0])


def test_bank_sharpness_is_relative_to_its_own_part() -> None:
    """Footage of another resolution has another sharpness scale: each part is its own unit."""
    from lipdub.exemplar.bank import Bank, BankPart

    def part(sharp: list[float], scale: float) -> BankPart:
        n = len(sharp)
        lm = np.tile(np.linspace(0, 100, 68 * 2).reshape(68, 2), (n, 1, 1)).astype(np.float32)
        return BankPart(
            source="x",
            frames=np.arange(n),
            landmarks=lm,
            origins=np.zeros((n, 2), np.int32),
            sizes=np.ones((n, 2), np.int32),
            patches=np.zeros((n, 1, 1, 3), np.uint8),
            usable=np.ones(n, bool),
            light=np.zeros((n, 3), np.float32),
            sharp=scale * np.asarray(sharp, np.float32),
        )

    bank = Bank.of([part([1.0, 2.0, 4.0], 1.0), part([1.0, 2.0, 4.0], 50.0)])
    assert bank.sharp.tolist() == pytest.approx([0.5, 1.0, 2.0] * 2)


def test_fade_plan_crossfades_only_at_joins() -> None:
    follows = np.ones(30, bool)
    follows[[0, 15]] = False
    path = np.r_[np.arange(2, 10), np.arange(20, 28)]  # One join at t = 8.
    first, second, alpha = fade_plan(path, follows, width=2)
    assert np.flatnonzero(alpha).tolist() == [6, 7, 8, 9]
    assert np.all(np.diff(alpha[6:10]) > 0)
    # Before the join the outgoing run is shown and the incoming one started early; after it,
    # the outgoing run is continued.
    assert first[6:10].tolist() == [8, 9, 10, 11]
    assert second[6:10].tolist() == [18, 19, 20, 21]
    assert np.array_equal(first[alpha == 0], path[alpha == 0])


def test_every_bilabial_frame_gets_closed_lips_whatever_the_other_costs_say() -> None:
    rng = np.random.default_rng(3)
    t_len, n = 30, 12
    unary = rng.uniform(0, 1, (t_len, n))
    closed = np.zeros(n, bool)
    closed[[4, 9]] = True
    unary[:, closed] += 50.0  # The shape target would never pick a closed mouth.
    follows = np.ones(n, bool)
    wanted = [5, 6, 17, 18, 25]
    missed = require_closed(unary, wanted, closed)
    assert missed == []
    path = select_path(unary, follows, SelectWeights())
    assert closed[path[wanted]].all()
    assert not closed[path[[0, 10, 12, 29]]].any()  # Elsewhere the costs still rule.


def test_a_bank_with_no_allowed_closed_frame_is_reported_not_forced() -> None:
    unary = np.zeros((5, 3))
    unary[2, 1] = np.inf  # The only closed frame is held out at frame 2.
    closed = np.array([False, True, False])
    assert require_closed(unary, [1, 2], closed) == [2]
    assert np.isinf(unary[1, [0, 2]]).all() and np.isfinite(unary[2, [0, 2]]).all()


def test_the_shots_own_frames_cost_more_near_where_they_were_filmed() -> None:
    out = np.array([10, 11, 12])
    bank = np.array([10, 40, 11, 10])
    own = np.array([True, True, True, False])  # The last frame is another shot's frame 10.
    cost = replay_costs(out, bank, own, 2.0)
    assert cost.shape == (3, 4)
    assert (cost[:, 0] == 2.0).all() and (cost[:, 2] == 2.0).all()
    assert (cost[:, 1] == 0).all() and (cost[:, 3] == 0).all()
    far = replay_costs(np.array([10 + REPLAY_FRAMES + 1]), np.array([10]), np.array([True]), 2.0)
    assert far[0, 0] == 0


def test_viseme_cost_weighs_the_bank_by_the_dubs_posteriors() -> None:
    posteriors = np.array([[0.0, 1.0, 0, 0, 0, 0], [0.5, 0, 0, 0, 0.5, 0]])
    bank = np.array([[0.0, 0.0, 1, 1, 3, 1], [0.0, 4.0, 1, 1, 0, 1]])
    cost = viseme_costs_over_time(posteriors, bank, 2.0)
    np.testing.assert_allclose(cost, [[0.0, 8.0], [3.0, 0.0]])


def test_lips_shut_where_the_target_is_apart_cost_and_lose_to_an_open_frame() -> None:
    """Closed bank frames cost ``apart`` where the target's lips are apart and nothing where it
    is closed (a p/b/m, a pause); a frame apart by the margin costs nothing; and a run of closed
    frames that the transitions favour loses to jumping to an open one."""
    level, margin = 0.04, 0.02
    bank_gap = np.array([0.0, level, level + margin / 2, level + margin, 0.2])
    target_gap = np.array([0.15, level - 0.01])  # Apart, then closed.
    cost = apart_costs(target_gap, bank_gap, level, weight=3.0, margin=margin)
    np.testing.assert_allclose(cost[0], [3.0, 3.0, 1.5, 0.0, 0.0])
    np.testing.assert_allclose(cost[1], 0.0)
    # Bank: a closed run (frames 0-3) and one open frame (4); the target asks for open lips at
    # every frame. Without the apart cost the run's bonus keeps the path on the closed frames.
    follows = np.array([False, True, True, True, False])
    gaps = np.array([0.0, 0.0, 0.0, 0.0, 0.1])
    unary = np.zeros((4, 5))
    unary[:, 4] = 1.0  # A little worse on shape, pose and light.
    w = SelectWeights()
    assert (select_path(unary, follows, w) < 4).all()
    apart = unary + apart_costs(np.full(4, 0.1), gaps, level, w.apart)
    assert (select_path(apart, follows, w) == 4).all()


def test_the_apart_margin_grows_with_the_actors_opening_within_its_bounds() -> None:
    """An actor whose lips barely part gets the smallest margin (else no frame is apart enough),
    one who opens wide the largest (the bench's landmarks read their gaps smaller)."""
    rng = np.random.default_rng(0)
    assert apart_margin(rng.uniform(0.0, 0.05, 500)) == APART_MIN
    assert apart_margin(rng.uniform(0.0, 0.3, 500)) == APART_MAX
    middle = apart_margin(rng.uniform(0.0, 0.13, 500))
    assert APART_MIN < middle < APART_MAX
