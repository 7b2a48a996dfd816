"""Choose one bank frame per output frame: match costs, then one Viterbi pass over the track.

This is the exemplar path's counterpart of MaLS. A frame-by-frame nearest neighbour would jump
between unrelated bank frames every frame (the texture flickers); VDub and Video Rewrite instead
pick a *sequence* that trades match quality against continuity. The cost of a path b_1..b_T is

    Σ_t U_t(b_t) + Σ_t C(b_{t−1}, b_t)

with the unary cost U (mouth shape, head pose, light; :func:`match_costs`; the dub's visemes,
:func:`viseme_costs_over_time`; lips shut where the target's are apart, :func:`apart_costs`;
replaying the shot's own mouth, :func:`replay_costs`) and the transition C:
``run_bonus`` subtracted when b_t is the source frame right after b_{t−1} (a real run of the
actor's own motion), ``hold`` when the frame repeats, ``jump`` for anything else. Because C takes
only three values, the minimum over predecessors is the best of three candidates, so the pass is
O(T·N), not O(T·N²).

Each p/b/m of the dub is a hard constraint, not a cost (:func:`require_closed`): at its frame and
the one before, every bank frame whose lips are apart is forbidden (U = ∞), so the path must pass
through a closed mouth there whatever the other costs say. A soft cost can be outbid by a run
or a pose; a director checks every closure.

Where the selection jumps, :func:`fade_plan` cross-fades the two runs over a few frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Standard deviations below this are floored (an actor who never moves a component).
MIN_SIGMA = 1e-3
#: Own-shot bank frames this close in time to the output frame count as replaying the original.
REPLAY_FRAMES = 6
#: Gap above the actor's closed level that lips asked to be apart should show, as a share of
#: the actor's 10th–90th percentile gap spread, within [APART_MIN, APART_MAX] IOD
#: (:func:`apart_margin`). The viseme bench measures closed lips on dlib's points refitted on
#: the output, against the source's level, and those read a bank frame's gap up to 0.03 IOD
#: smaller than the bank's own landmarks do (headgan_woman-1: frames at 0.105 by the bank's
#: read 0.075–0.10, the closed level 0.103): with 0.02 IOD every actor, chance on en/pt was
#: 0.38–0.42 there and on aoc-1, with 0.035 0.32–0.34; but an actor whose lips barely part
#: (vox_00098-1, spread 0.05 IOD) then has hardly a frame apart enough, and chance rose from
#: 0.48–0.59 to 0.89–0.91.
APART_SHARE = 0.25
APART_MIN, APART_MAX = 0.02, 0.035


@dataclass(frozen=True)
class SelectWeights:
    """Weights of the selection costs (shape distances are in units of the actor's std)."""

    shape: float = 1.0  # Per squared std of each mouth-shape component.
    yaw: float = 0.04  # Head yaw (−1..1 ratio) difference at which the cost is 1 (std).
    pitch: float = 0.04  # Nose length (IOD) difference at which the cost is 1.
    light: float = 6.0  # Mean skin colour difference (0..255) at which the cost is 1.
    jump: float = 3.0  # Cost of cutting to an unrelated bank frame.
    hold: float = 0.6  # Cost of showing the same bank frame again.
    run_bonus: float = 0.3  # Reward for continuing with the next source frame.
    sharp: float = 1.0  # Cost per halving of lip sharpness below its reference (blur).
    viseme: float = 6.0  # Per unit of viseme mismatch (mouth_class.viseme_costs) × posterior.
    replay: float = 2.0  # Showing the shot's own frame within ±REPLAY_FRAMES of the output
    # frame: that replays the original speech in sync with the picture (see replay_costs).
    apart: float = 3.0  # A frame whose lips are closed where the target's are apart (a ramp
    # to 0 at apart_margin above the closed level; apart_costs).


def match_costs(
    target_coef: np.ndarray,
    bank_coef: np.ndarray,
    sigma: np.ndarray,
    target_pose: np.ndarray,
    bank_pose: np.ndarray,
    target_light: np.ndarray,
    bank_light: np.ndarray,
    weights: SelectWeights,
    bank_sharp: np.ndarray | None = None,
) -> np.ndarray:
    """(T, N) unary costs U_t(b) of showing bank frame b at output frame t.

    Arguments:
        target_coef: (T, K) mouth-shape coefficients asked for.
        bank_coef: (N, K) those of the bank frames.
        sigma: (K,) the actor's spread per component (distances are divided by it).
        target_pose, bank_pose: (T, 2), (N, 2) yaw ratio and nose length (IOD).
        target_light, bank_light: (T, 3), (N, 3) mean skin colour (RGB, 0..255).
        weights: the weights.
        bank_sharp: (N,) lip sharpness relative to its part's median (:attr:`Bank.sharp`); a
            blurrier frame than usual costs ``weights.sharp`` per halving (None: not counted).
    """
    s = np.maximum(np.asarray(sigma, np.float64), MIN_SIGMA)
    tc = np.asarray(target_coef, np.float64) / s
    bc = np.asarray(bank_coef, np.float64) / s
    cost = weights.shape * _sqdist(tc, bc)
    scale = np.array([weights.yaw, weights.pitch])
    cost += _sqdist(np.asarray(target_pose) / scale, np.asarray(bank_pose) / scale)
    cost += _sqdist(
        np.asarray(target_light) / weights.light, np.asarray(bank_light) / weights.light
    )
    if bank_sharp is not None:
        rel = np.maximum(np.asarray(bank_sharp, np.float64), 1e-6)
        cost += weights.sharp * np.maximum(0.0, -np.log2(rel))[None, :]
    return cost


def viseme_costs_over_time(
    posteriors: np.ndarray, bank_costs: np.ndarray, weight: float
) -> np.ndarray:
    """(T, N) cost of each bank frame against the dub's viseme posteriors.

    Arguments:
        posteriors: (T, C) per output frame (rows sum to at most 1; NEUTRAL's column costs 0).
        bank_costs: (N, C) :func:`~lipdub.analysis.mouth_class.viseme_costs` of the bank.
        weight: ``SelectWeights.viseme``.
    """
    return weight * np.asarray(posteriors, np.float64) @ np.asarray(bank_costs, np.float64).T


def replay_costs(
    out_frames: np.ndarray, bank_frames: np.ndarray, own: np.ndarray, weight: float
) -> np.ndarray:
    """(T, N) cost of showing the shot's own frame near the time it was filmed.

    The shot's own frames match its pose and light best right where they were filmed, so without
    this the path drifts onto the source's own run and its mouth says the original line in sync
    with the picture: the original speech leaks through the dub. Frames of the shot within
    ±:data:`REPLAY_FRAMES` of the output frame cost ``weight``; other parts of the bank, and the
    shot's frames from other moments, cost nothing.

    Arguments:
        out_frames: (T,) shot frame of each output frame.
        bank_frames: (N,) source frame of each bank frame.
        own: (N,) bool, True where the bank frame comes from this shot.
        weight: ``SelectWeights.replay``.
    """
    near = np.abs(np.asarray(out_frames)[:, None] - np.asarray(bank_frames)[None, :])
    return weight * ((near <= REPLAY_FRAMES) & np.asarray(own, bool)[None, :])


def apart_margin(gaps: np.ndarray) -> float:
    """How far above the closed level (IOD) lips that should be apart must be, for an actor
    whose bank frames have these inner-lip ``gaps`` (see :data:`APART_SHARE`)."""
    g = np.asarray(gaps, np.float64)
    g = g[np.isfinite(g)]
    spread = float(np.quantile(g, 0.9) - np.quantile(g, 0.1)) if g.size else 0.0
    return float(np.clip(APART_SHARE * spread, APART_MIN, APART_MAX))


def apart_costs(
    target_gap: np.ndarray,
    bank_gap: np.ndarray,
    level: float,
    weight: float,
    margin: float | None = None,
) -> np.ndarray:
    """(T, N) cost of showing lips shut, or nearly, where the target's lips are apart.

    A mouth that closes outside the dub's p/b/m reads as a bilabial that is not there (and as
    mumbling), yet the shape cost alone does not stop it: a bank frame that matches the pose
    and light, or continues a run, wins over one whose lips are a little further apart. So on
    output frames whose target gap is ``level + margin`` or more (a ramp from ``level``), a bank
    frame costs ``weight`` at or below the closed level, nothing from ``level + margin`` up, and
    a ramp between; a p/b/m's or a pause's closed target asks for nothing. The cost is bounded,
    so a bank with no apart frame of the right pose still gives one.

    Arguments:
        target_gap: (T,) inner-lip gap of each output frame's target shape, IOD.
        bank_gap: (N,) of each bank frame (its own landmarks), IOD.
        level: the actor's closed level (:func:`~lipdub.analysis.mouth_class.closed_level`).
        weight: ``SelectWeights.apart``.
        margin: IOD above ``level`` the lips should be apart by (None: :func:`apart_margin`
            of ``bank_gap``).
    """
    if margin is None:
        margin = apart_margin(bank_gap)
    need = np.clip((np.asarray(target_gap, np.float64) - level) / max(margin, 1e-6), 0.0, 1.0)
    short = np.clip((level + margin - np.asarray(bank_gap, np.float64)) / max(margin, 1e-6), 0, 1)
    return weight * need[:, None] * short[None, :]


def require_closed(unary: np.ndarray, frames: list[int], closed: np.ndarray) -> list[int]:
    """Forbid lips apart at ``frames`` (in place): U_t(b) = ∞ where b is not closed.

    A frame where no closed bank frame is allowed (none in the bank, or all held out) is left
    as it was and returned, so the caller can report it rather than fail.

    Arguments:
        unary: (T, N) costs, changed in place.
        frames: output frames (0..T-1) that must show closed lips.
        closed: (N,) bool, bank frames whose lips are closed.

    Returns:
        The frames that could not be given closed lips.
    """
    closed = np.asarray(closed, bool)
    missed = []
    for t in frames:
        if not np.isfinite(unary[t, closed]).any():
            missed.append(t)
            continue
        unary[t, ~closed] = np.inf
    return missed


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(T, N) squared Euclidean distances between the rows of a (T, D) and b (N, D)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    d = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def select_path(unary: np.ndarray, follows: np.ndarray, weights: SelectWeights) -> np.ndarray:
    """The minimum-cost bank frame sequence (Viterbi).

    Arguments:
        unary: (T, N) costs; ``inf`` forbids a frame at a time (e.g. a held-out neighbour).
        follows: (N,) bool, True where bank frame b is the source frame right after b − 1.
        weights: ``jump``, ``hold`` and ``run_bonus`` of the transitions.

    Returns:
        (T,) int64 bank indices.
    """
    u = np.asarray(unary, np.float64)
    t_len, n = u.shape
    if n == 0:
        raise ValueError("the bank is empty")
    follows = np.asarray(follows, bool).copy()
    follows[0] = False
    back = np.empty((t_len, n), np.int64)
    score = u[0].copy()
    idx = np.arange(n)
    for t in range(1, t_len):
        best = int(np.argmin(score))
        cand = np.full((3, n), np.inf)
        cand[0] = score[best] + weights.jump  # Cut from the best frame so far.
        cand[1] = score + weights.hold  # Same frame again.
        cand[2, 1:] = np.where(follows[1:], score[:-1] - weights.run_bonus, np.inf)
        pick = np.argmin(cand, axis=0)
        back[t] = np.choose(pick, [np.full(n, best), idx, idx - 1])
        score = u[t] + cand[pick, idx]
    path = np.empty(t_len, np.int64)
    path[-1] = int(np.argmin(score))
    for t in range(t_len - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def fade_plan(
    path: np.ndarray, follows: np.ndarray, width: int, pinned: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cross-fades at the joins of a selected path.

    At a join (b_t not the continuation of b_{t−1}) the outgoing run is continued for ``width``
    frames past it and the incoming run is started ``width`` frames early, where the bank has
    those frames, and the two are mixed with a linear ramp. ``pinned`` (T,) bool frames show
    their own selected frame unmixed: a p/b/m's closed lips, which a fade would half open.

    Returns:
        ``(first, second, alpha)``: (T,) bank indices and (T,) weight of ``second``; the output
        frame t is (1 − alpha)·first + alpha·second (alpha = 0 away from joins).
    """
    path = np.asarray(path, np.int64)
    follows = np.asarray(follows, bool)
    n = len(follows)
    t_len = len(path)
    first, second = path.copy(), path.copy()
    alpha = np.zeros(t_len, np.float64)
    if width <= 0:
        return first, second, alpha

    def run_of(b: int, steps: int) -> int | None:
        """Bank frame ``steps`` source frames after (or before, steps < 0) frame b."""
        for _ in range(abs(steps)):
            if steps > 0:
                if b + 1 >= n or not follows[b + 1]:
                    return None
                b += 1
            else:
                if b <= 0 or not follows[b]:
                    return None
                b -= 1
        return b

    keep = np.zeros(t_len, bool) if pinned is None else np.asarray(pinned, bool)
    for t in range(1, t_len):
        if path[t] == path[t - 1] or (path[t] == path[t - 1] + 1 and follows[path[t]]):
            continue
        for k in range(-width, width):
            s = t + k
            if not 0 <= s < t_len or alpha[s] > 0 or keep[s]:
                continue
            # Before the join the path itself is the outgoing run; after it, the incoming one.
            out = int(path[s]) if s < t else run_of(int(path[t - 1]), s - (t - 1))
            inc = int(path[s]) if s >= t else run_of(int(path[t]), s - t)
            if out is None or inc is None:
                continue
            first[s], second[s] = out, inc
            alpha[s] = (k + width + 0.5) / (2 * width)
    return first, second, alpha
