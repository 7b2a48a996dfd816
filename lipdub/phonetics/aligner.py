"""Forced alignment of a known phone sequence (the dub's script) to CTC phone posteriors.

The standard CTC alignment lattice: states blank, φ_1, blank, φ_2, ..., φ_L, blank (2L + 1). At
each frame a path stays, steps to the next state, or skips a blank between two phones that
differ; it starts in the first blank or φ_1 and ends in φ_L or the last blank. Viterbi finds the
single best path, O(N · L) in numpy (one vectorised step per frame). A phone's time is the first
frame its state is entered.

A script phone need not be a token of the recognizer (``ɾ`` vs ``r``, ``oː`` vs ``o``): each is
given an *emission group* (:func:`emission_groups`): its own token where it has one, else the
tokens with the same base letters, else those of its viseme class; the group's emission log
probability is the log of the summed posteriors.

How well the script fits the audio is :func:`script_fit`: the forced path's shortfall against the
free (best token per frame) path, divided by the shortfall of the same phones in shuffled orders
(same inventory, no order), so that the measure does not depend on how confident the recognizer
is in a language. On eSpeak NG speech in six languages (bench/visemes.py) the right script scores
0.36–0.63, the same with a quarter of its words missing 0.49–0.77, another sentence 0.81–0.96.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipdub.phonetics.visemes import base_letters, viseme_of

#: :func:`script_fit` above this: the script is taken not to match the audio (module doc).
MISMATCH_RATIO = 0.75
#: Shuffled orders the fit is measured against, and their seed (fixed: same input, same answer).
SHUFFLES = 3
SHUFFLE_SEED = 0
#: A phone is supported by the audio where its posterior reaches this inside its aligned span.
SUPPORT_PROB = 0.05
_NEG = -1e30


@dataclass(frozen=True)
class Alignment:
    """Where each script phone is emitted."""

    phones: tuple[str, ...]  # The script's phones, in order.
    frames: np.ndarray  # (L,) int: the recognizer frame each phone is first emitted at.
    ends: np.ndarray  # (L,) int: the frame after its last emitting frame.
    shortfall: float  # Mean nats/frame of the free path over the forced one.
    support: float  # Share of phones whose posterior reaches SUPPORT_PROB inside their span.


def emission_groups(phones: list[str], tokens: tuple[str, ...]) -> list[np.ndarray]:
    """Token columns whose posteriors stand for each phone (see the module doc)."""
    index = {t: i for i, t in enumerate(tokens)}
    by_base: dict[str, list[int]] = {}
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(tokens):
        letters = base_letters(t)
        if not letters or t.startswith("<"):
            continue
        by_base.setdefault(letters, []).append(i)
        by_class.setdefault(int(viseme_of(t)), []).append(i)
    groups = []
    for p in phones:
        if p in index:
            groups.append(np.array([index[p]]))
            continue
        letters = base_letters(p)
        found = by_base.get(letters) or by_base.get(letters[:1]) if letters else None
        groups.append(np.array(found or by_class[int(viseme_of(p))]))
    return groups


def align(
    log_probs: np.ndarray, phones: list[str], tokens: tuple[str, ...], blank: int
) -> Alignment:
    """Viterbi CTC alignment of ``phones`` to (N, V) ``log_probs`` (see the module doc).

    Raises:
        ValueError: no phones, or more phones than the audio has frames for.
    """
    lp = np.asarray(log_probs, np.float64)
    n = len(lp)
    if not phones:
        raise ValueError("the script has no phones")
    groups = emission_groups(phones, tokens)
    emit = np.stack([np.logaddexp.reduce(lp[:, g], axis=1) for g in groups], axis=1)  # (N, L)
    n_phones = len(phones)
    same_as_prev = np.array(
        [False]
        + [set(groups[i].tolist()) == set(groups[i - 1].tolist()) for i in range(1, n_phones)]
    )
    if n < n_phones + int(same_as_prev.sum()):
        raise ValueError(f"{n_phones} phones do not fit in {n} frames of audio")
    s = 2 * n_phones + 1
    state_emit = np.empty((n, s))
    state_emit[:, 0::2] = lp[:, blank : blank + 1]
    state_emit[:, 1::2] = emit
    # A skip from phone k-1 over the blank into phone k is allowed unless they are the same.
    can_skip = np.zeros(s, bool)
    can_skip[3::2] = ~same_as_prev[1:]
    score = np.full(s, _NEG)
    score[0], score[1] = state_emit[0, 0], state_emit[0, 1]
    back = np.zeros((n, s), np.int8)  # 0 stay, 1 from previous state, 2 skip.
    for t in range(1, n):
        stay = score
        step = np.concatenate([[_NEG], score[:-1]])
        skip = np.where(can_skip, np.concatenate([[_NEG, _NEG], score[:-2]]), _NEG)
        cand = np.stack([stay, step, skip])
        pick = np.argmax(cand, axis=0)
        back[t] = pick
        score = cand[pick, np.arange(s)] + state_emit[t]
    end = s - 1 if score[s - 1] >= score[s - 2] else s - 2
    forced = float(score[end])
    path = np.empty(n, np.int64)
    path[-1] = end
    for t in range(n - 1, 0, -1):
        path[t - 1] = path[t] - int(back[t, path[t]])
    frames = np.full(n_phones, -1, np.int64)
    ends = np.zeros(n_phones, np.int64)
    for t, st in enumerate(path):
        if st % 2 == 1:
            k = st // 2
            if frames[k] < 0:
                frames[k] = t
            ends[k] = t + 1
    free = float(lp.max(axis=1).sum())
    peak = np.array([emit[frames[k] : ends[k], k].max() for k in range(n_phones)])
    support = float((peak >= np.log(SUPPORT_PROB)).mean())
    return Alignment(tuple(phones), frames, ends, (free - forced) / n, support)


def script_fit(
    log_probs: np.ndarray, phones: list[str], tokens: tuple[str, ...], blank: int
) -> tuple[Alignment, float]:
    """The alignment of ``phones`` and how well they fit the audio (see the module doc: about
    0.4–0.6 for the words spoken, about 0.9 for other words; above :data:`MISMATCH_RATIO` the
    script is not what the audio says)."""
    found = align(log_probs, phones, tokens, blank)
    rng = np.random.default_rng(SHUFFLE_SEED)
    null = [
        align(log_probs, [phones[i] for i in rng.permutation(len(phones))], tokens, blank)
        for _ in range(SHUFFLES)
    ]
    base = float(np.mean([a.shortfall for a in null]))
    return found, found.shortfall / max(base, 1e-9)
