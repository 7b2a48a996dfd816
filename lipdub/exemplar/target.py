"""The mouth shape the dub asks for at each output frame: the exemplar selection's shape target.

The selection (:mod:`lipdub.exemplar.select`) compares bank frames with a target in a K-dimensional
PCA of the 40-number mouth shape (:mod:`lipdub.analysis.mouth_shape`),

    s ≈ μ + Σ_k c_k · b_k                   (μ: mean shape, b_k: orthonormal rows of B)

Two drivers give it, behind one protocol (:class:`ShapeDriver`):

- ``viseme-table`` (:class:`VisemeTableDriver`, the default): rule-based, no weights. The basis
  is a PCA of the actor's own bank shapes (:func:`fit_basis`), so nothing in it comes from other
  people's footage. Per output frame t the target is the dub's viseme posteriors p_t(c)
  (:class:`~lipdub.phonetics.track.VisemeTrack`) over the actor's own mouths m_c
  (:func:`class_means`),

      ĉ_t = m_neutral + Σ_{c ≠ neutral} g_t(c) · (m_c − m_neutral),
      g_t(c) = GAIN · p_t(c), scaled down where their sum passes 1,

  where p_t is read :data:`ANTICIPATION_S` ahead (the lips move towards a sound before it is
  heard) and ĉ is smoothed over time with a Gaussian of σ = :data:`SMOOTH_FRAMES`
  (the recognizer's classes change by steps). m_c is the mean of the bank frames of mouth class
  c (:func:`~lipdub.analysis.mouth_class.mouth_classes`), except that the speaking classes come
  from frames whose lips are apart (by :func:`~lipdub.exemplar.select.apart_margin` over the
  actor's closed level) and rounded and spread from the actor's narrowest and widest such frames
  (:data:`EXTREME_SHARE`). Closed lips (m_closed) are asked for on two kinds of frame only:
  each p/b/m and the ``lead`` frames before it, set after the smoothing so that a closure does
  not spread; and the dub's pauses, quiet stretches of at least :data:`MIN_PAUSE_S`
  (:data:`QUIET_RAMP_DB`), not the gaps between words. Everywhere else the selection's
  :func:`~lipdub.exemplar.select.apart_costs` keeps the shown lips apart. Scaling the opening by
  the dub's loudness lowered the target's correlation with real mouths (an exploratory sweep on
  six test clips driven by their own speech: r 0.18 without, 0.17 at ±30 %, 0.16 at ±60 %).
- a learned checkpoint (:class:`LearnedDriver`, e.g. ``mouth-driver-v1``): the network of
  :mod:`lipdub.model.driver` with the PCA basis stored in its file. Only by choice: the bundled
  one was trained on research-only clips.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from scipy.ndimage import gaussian_filter1d

from lipdub.analysis.mouth_class import closed_level
from lipdub.analysis.mouth_shape import MOUTH_POINTS
from lipdub.analysis.runs import true_runs
from lipdub.errors import WeightsError
from lipdub.exemplar.select import apart_margin
from lipdub.manifest import RULE_DRIVERS, VISEME_TABLE, load_manifest
from lipdub.media.audio import SILENT_DB, loudness_per_frame
from lipdub.phonetics.recognizer import default_recognizer
from lipdub.phonetics.track import VisemeTrack, viseme_track
from lipdub.phonetics.visemes import Viseme

if TYPE_CHECKING:  # The learned driver's module imports torch: only a learned driver loads it.
    from lipdub.model.driver import Driver

log = logging.getLogger(__name__)

SHAPE_DIM = MOUTH_POINTS * 2  # 40 numbers per mouth shape.
#: Most PCA components of the actor's own basis. The target only says something along the few
#: directions in which the actor's class means differ, and the selection weighs every component
#: by its own std, so each further one adds the bank's unrelated variation to the shape cost.
#: bench/visemes.py self-driven, where the cap changed the basis (aoc-1, lrs2_00019-1): r of the
#: output's gap with the real one −0.03 → 0.29 and 0.13 → 0.23 with 3 instead of up to 8.
MAX_COMPONENTS = 3
#: Components are kept until they explain this share of the bank's shape variance (at most
#: MAX_COMPONENTS): the rest is landmark noise.
VARIANCE_KEPT = 0.95
#: Gaussian σ of the target's temporal smoothing, in frames. Before closures were set after it,
#: σ = 3 held flicker down (1.15 → 1.04 of the source's on four clips against σ = 2); with the
#: closures and the apart cost the selection's runs do that, and σ = 3 blurred an o between
#: two i's away. bench/visemes.py on aoc-1, aoc-3, lrs2_00019-1, vox_00098-1 (8 dubs): the
#: target's o/u-to-i/e width ratio 0.955 at σ = 1.5 and 0.922 at 0 (aoc-3 it); rendered,
#: rounding 0.953 at σ = 1 against 0.948 at 0, chance 0.42 against 0.44, flicker ≤ 1.15
#: (tuning runs with a fixed 0.02 IOD apart margin and viseme = 3).
SMOOTH_FRAMES = 1.0
#: How far ahead of a frame its visemes are read, seconds: the lips move before the sound. The
#: recognizer's rounded-minus-spread posterior on eSpeak NG's o/u spans less that on its i/e
#: spans (the six bench lines, 25 fps), read 0, 1 and 2 frames ahead: 0.82, 0.96, 0.61 (the
#: earlier 0.06 s rounded to 2 frames).
ANTICIPATION_S = 0.04
#: Width in dB, above the silence level (lipdub.media.audio.SILENT_DB), of the ramp from a quiet
#: dub frame, whose target is the actor's closed mouth, to a speaking one, whose target is the
#: table's. The recognizer's posteriors on a pause are mostly "neutral", and a talking actor's
#: neutral frames are parted: without it the mouth hung open in the dub's pauses (QC's
#: silent-vs-loud check flagged the AOC clip: rendered opening 0.150 IOD silent, 0.129 loud).
QUIET_RAMP_DB = 10.0
#: Shortest quiet stretch of the dub taken as a pause (seconds), whose target is closed lips.
#: Shorter ones are the gaps between words and the silent closure of t, k, p (eSpeak NG lines:
#: 1–3 frames at 25 fps, comma pauses 5–6): closing the lips on each of those made the mouth
#: shut about twice a second outside p/b/m.
MIN_PAUSE_S = 0.2
#: Share of the actor's apart frames whose mean is the rounded (narrowest) and the spread
#: (widest) target. Against the class means (25 % quantiles) it widens the target's o/u-to-i/e
#: width contrast (aoc-3 it: ratio 0.955 → 0.934), though the rendered rounding hardly follows
#: (0.950 at 15 %, 0.951 at 8 %, four clips): the selection's pose and light costs decide more.
EXTREME_SHARE = 0.08
#: Each visible class's posterior is multiplied by this (their sum capped at 1, the rest
#: neutral): the recognizer spreads a vowel's mass over the tongue consonants beside it (on
#: one clip's o/u spans the rounded posterior is 0.34 on average, 0.61 spread on i/e).
GAIN = 2.0
#: Fewest apart bank frames for the speaking classes to be taken from them.
MIN_APART = 5


@dataclass(frozen=True)
class ShapeBasis:
    """A PCA of mouth shapes: μ (40,) and B (K, 40) with orthonormal rows."""

    mean: np.ndarray
    basis: np.ndarray

    @property
    def components(self) -> int:
        """K, the coefficients per frame."""
        return int(self.basis.shape[0])

    def project(self, shapes: np.ndarray) -> np.ndarray:
        """(N, 20, 2) mouth shapes → (N, K) float32 coefficients c = B·(s − μ)."""
        s = np.asarray(shapes, np.float64)
        if s.ndim != 3 or s.shape[1:] != (MOUTH_POINTS, 2):
            raise ValueError(f"shapes: expected (N, {MOUTH_POINTS}, 2), got {s.shape}")
        return ((s.reshape(len(s), SHAPE_DIM) - self.mean) @ self.basis.T).astype(np.float32)

    def unproject(self, coef: np.ndarray) -> np.ndarray:
        """(N, K) coefficients → (N, 20, 2) float32 mouth shapes s = μ + Bᵀ·c."""
        c = np.asarray(coef, np.float64)
        if c.ndim != 2 or c.shape[1] != self.components:
            raise ValueError(f"coef: expected (N, {self.components}), got {c.shape}")
        return (c @ self.basis + self.mean).reshape(-1, MOUTH_POINTS, 2).astype(np.float32)


def fit_basis(
    shapes: np.ndarray, max_components: int = MAX_COMPONENTS, kept: float = VARIANCE_KEPT
) -> ShapeBasis:
    """The PCA of one actor's mouth shapes (module doc): the fewest components, at most
    ``max_components`` and at least 1, that explain ``kept`` of their variance.

    Raises:
        ValueError: no shapes.
    """
    s = np.asarray(shapes, np.float64).reshape(-1, SHAPE_DIM)
    if not len(s):
        raise ValueError("a shape basis of no shapes")
    mean = s.mean(0)
    _, sv, vt = np.linalg.svd(s - mean, full_matrices=False)
    var = sv**2
    share = np.cumsum(var) / max(float(var.sum()), 1e-12)
    k = int(np.searchsorted(share, kept) + 1)
    k = max(1, min(k, max_components, len(vt)))
    return ShapeBasis(mean, vt[:k].copy())


@dataclass(frozen=True)
class ActorMouths:
    """What a driver may know of the actor: their bank frames' coefficients, classes and, where
    the caller measured it, geometry."""

    coef: np.ndarray  # (N, K) bank coefficients in the driver's basis.
    classes: np.ndarray  # (N,) int Viseme of each bank frame (from its own landmarks).
    gap: np.ndarray | None = None  # (N,) inner-lip gap, IOD (mouth_class.mouth_geometry).
    width: np.ndarray | None = None  # (N,) mouth width corner to corner, IOD.


class ShapeDriver(Protocol):
    """Dub → per-frame target coefficients, in a basis the driver chooses for the actor."""

    name: str  # For logs and reports ("viseme-table", "mouth-driver-v1 (…)").

    def basis(self, shapes: np.ndarray) -> ShapeBasis:
        """The basis targets are given in, for an actor whose bank has these (N, 20, 2) shapes."""
        ...

    def targets(
        self,
        actor: ActorMouths,
        audio_16k: np.ndarray,
        fps: Fraction,
        frames: np.ndarray,
        visemes: VisemeTrack | None,
    ) -> np.ndarray:
        """(T, K) float32 targets for the shot ``frames`` of one track (module doc).

        Arguments:
            actor: the actor's bank in :meth:`basis` coordinates.
            audio_16k: the dub, 16 kHz mono; sample 0 is the shot's first frame.
            fps: the shot's frame rate.
            frames: (T,) shot frames of the track.
            visemes: the dub's viseme track (frames from the shot's first); None: recognised
                here when the driver needs one.
        """
        ...


@dataclass(frozen=True)
class TableConfig:
    """The viseme table's constants (module doc); their digest goes into job fingerprints."""

    max_components: int = MAX_COMPONENTS
    variance_kept: float = VARIANCE_KEPT
    smooth_frames: float = SMOOTH_FRAMES
    anticipation_s: float = ANTICIPATION_S
    lead: int = 1  # Frames before each p/b/m whose target is closed lips too (the selection's
    # hard constraint has its own, ExemplarSettings.closure_lead, also 1 by default).
    quiet_ramp_db: float = QUIET_RAMP_DB
    min_pause_s: float = MIN_PAUSE_S
    extreme_share: float = EXTREME_SHARE
    gain: float = GAIN
    version: int = 2  # Bumped when the rule changes without a constant changing.

    def digest(self) -> str:
        """SHA-256 of the constants as canonical JSON: a render made with others is stale."""
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def class_means(actor: ActorMouths, cfg: TableConfig = TableConfig()) -> np.ndarray:
    """(C, K) m_c: the table's mouth for each class, in the actor's coefficients.

    By default the mean of the class's bank frames; a class the bank lacks takes the neutral
    mean, and a bank without neutral frames the bank's mean. Where the actor's gaps are known
    (:attr:`ActorMouths.gap`), the speaking classes come from the frames whose lips are apart
    by at least :func:`~lipdub.exemplar.select.apart_margin` above the actor's closed level
    (neutral and open: those of their class; a talking actor's neutral frames include some at
    the closed level, and a dub whose every frame leans that way reads as a mouth that keeps
    shutting), and with the widths too, rounded and spread are the narrowest and the widest
    ``cfg.extreme_share`` of those frames (the class means, 25 % quantiles, hardly differ in
    width on a mouth that moves little)."""
    coef = np.asarray(actor.coef, np.float64)
    classes = np.asarray(actor.classes)
    base = coef.mean(0) if len(coef) else np.zeros(coef.shape[1])
    neutral = classes == int(Viseme.NEUTRAL)
    if neutral.any():
        base = coef[neutral].mean(0)
    out = np.tile(base, (len(Viseme), 1))
    for v in Viseme:
        mine = classes == int(v)
        if mine.any():
            out[int(v)] = coef[mine].mean(0)
    if actor.gap is None or not len(coef):
        return out
    gap = np.asarray(actor.gap, np.float64)
    level = closed_level(gap)
    apart = gap >= (level if level is not None else -np.inf) + apart_margin(gap)
    if apart.sum() < MIN_APART:
        return out
    out[int(Viseme.NEUTRAL)] = coef[apart & (neutral if (apart & neutral).any() else apart)].mean(0)
    opened = apart & (classes == int(Viseme.OPEN))
    if opened.any():
        out[int(Viseme.OPEN)] = coef[opened].mean(0)
    for v in (Viseme.LIP_TEETH, Viseme.ROUNDED, Viseme.SPREAD):
        if not (classes == int(v)).any():
            out[int(v)] = out[int(Viseme.NEUTRAL)]
    if actor.width is not None:
        rows = np.flatnonzero(apart)
        order = rows[np.argsort(np.asarray(actor.width, np.float64)[rows], kind="stable")]
        k = max(1, round(cfg.extreme_share * len(order)))
        out[int(Viseme.ROUNDED)] = coef[order[:k]].mean(0)
        out[int(Viseme.SPREAD)] = coef[order[-k:]].mean(0)
    return out


def _smooth_runs(x: np.ndarray, frames: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-smooth the rows of ``x`` over time, within each run of consecutive frames."""
    if sigma <= 0 or len(x) < 2:
        return x
    out = x.copy()
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1
    for run in np.split(np.arange(len(x)), breaks):
        if len(run) > 1:
            out[run] = gaussian_filter1d(x[run], sigma, axis=0, mode="nearest")
    return out


class VisemeTableDriver:
    """The ``viseme-table`` driver (module doc): rule-based, the actor's own shapes only."""

    def __init__(self, cfg: TableConfig = TableConfig()) -> None:
        self.cfg = cfg
        self.name = VISEME_TABLE

    def basis(self, shapes: np.ndarray) -> ShapeBasis:
        """The PCA of the actor's own bank shapes (:func:`fit_basis`)."""
        return fit_basis(shapes, self.cfg.max_components, self.cfg.variance_kept)

    def targets(
        self,
        actor: ActorMouths,
        audio_16k: np.ndarray,
        fps: Fraction,
        frames: np.ndarray,
        visemes: VisemeTrack | None,
    ) -> np.ndarray:
        """See :meth:`ShapeDriver.targets` and the module doc."""
        frames = np.asarray(frames, np.int64).reshape(-1)
        shift = round(self.cfg.anticipation_s * float(fps))
        n_shot = int(frames.max()) + 1 + shift if len(frames) else 0
        if visemes is None:
            visemes = viseme_track(audio_16k, fps, n_shot, default_recognizer())
        post = np.zeros((len(frames), len(Viseme)), np.float64)
        n_post = len(visemes.posteriors)
        inside = (frames >= 0) & (frames < n_post)  # Frames past the dub stay neutral.
        ahead = np.minimum(frames + shift, n_post - 1)
        post[inside] = visemes.posteriors[ahead[inside]]
        means = class_means(actor, self.cfg)
        closed_mean = means[int(Viseme.CLOSED)]
        neutral = means[int(Viseme.NEUTRAL)]
        gain = post * self.cfg.gain
        gain[:, int(Viseme.NEUTRAL)] = 0.0
        gain /= np.maximum(gain.sum(1), 1.0)[:, None]  # Σ ≤ 1: a blend of the class mouths.
        target = neutral + gain @ (means - neutral)
        pause = self._pause(audio_16k, fps, frames, shift)
        target = (1 - pause[:, None]) * target + pause[:, None] * closed_mean
        target = _smooth_runs(target, frames, self.cfg.smooth_frames)
        # Closed lips on each p/b/m and its lead frames, and no further: set after the smoothing,
        # which would spread a closure over ±σ frames and pull its neighbours shut.
        closed = set(visemes.closed_frames(self.cfg.lead))
        at_closure = np.array([int(f) in closed for f in frames], bool)
        target[at_closure] = closed_mean
        return target.astype(np.float32)

    def _pause(
        self, audio_16k: np.ndarray, fps: Fraction, frames: np.ndarray, shift: int
    ) -> np.ndarray:
        """(T,) how much each frame is in a pause of the dub: 1 on a quiet frame, a ramp of
        :data:`QUIET_RAMP_DB` above the silence level, 0 where it speaks (from ``shift`` frames
        ahead, as the visemes are read); only on quiet stretches of at least
        :data:`MIN_PAUSE_S`, the rest are the gaps between words (0)."""
        if not len(frames):
            return np.zeros(0)
        loud = loudness_per_frame(np.asarray(audio_16k), int(frames.max()) + 1 + shift, fps)
        level = np.maximum(loud[frames], loud[frames + shift])
        pause = np.clip((SILENT_DB + self.cfg.quiet_ramp_db - level) / self.cfg.quiet_ramp_db, 0, 1)
        shortest = max(1, round(self.cfg.min_pause_s * float(fps)))
        # Runs of quiet frames that are also consecutive shot frames.
        for a, b in true_runs(pause > 0):
            split = np.flatnonzero(np.diff(frames[a:b]) != 1) + 1
            for run in np.split(np.arange(a, b), split):
                if len(run) < shortest:
                    pause[run] = 0.0
        return pause


class LearnedDriver:
    """A learned audio driver (:mod:`lipdub.model.driver`): its own basis, z-scores mapped onto
    the actor's range (:func:`~lipdub.model.driver.map_to_actor`); the visemes are not used."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.name = driver.name

    def basis(self, shapes: np.ndarray) -> ShapeBasis:
        """The basis stored with the checkpoint (the same for every actor)."""
        return ShapeBasis(self.driver.mean_shape, self.driver.basis)

    def targets(
        self,
        actor: ActorMouths,
        audio_16k: np.ndarray,
        fps: Fraction,
        frames: np.ndarray,
        visemes: VisemeTrack | None,
    ) -> np.ndarray:
        """See :meth:`ShapeDriver.targets`."""
        z = self.driver.predict(audio_16k, fps, np.asarray(frames))
        from lipdub.model.driver import map_to_actor

        return map_to_actor(z, actor.coef)


def driver_name(name: str | None, manifest: Path | None = None) -> str:
    """The driver ``name`` means: itself, or (None) the manifest's ``default_driver``.

    Raises:
        WeightsError: no name and no default.
    """
    if name is not None:
        return str(name)
    m = load_manifest(manifest)
    if m.default_driver is None:
        raise WeightsError(f"{m.path}: no mouth driver named and no default_driver set")
    return m.default_driver


def rule_digest(name: str) -> str:
    """The digest of a rule driver's constants (:meth:`TableConfig.digest`), for fingerprints.

    Raises:
        ValueError: not one of :data:`~lipdub.manifest.RULE_DRIVERS`.
    """
    if name != VISEME_TABLE:
        raise ValueError(f"{name!r} is not a rule-based driver ({', '.join(RULE_DRIVERS)})")
    return TableConfig().digest()


def open_driver(name: str | None = None, manifest: Path | None = None) -> ShapeDriver:
    """The driver a name (or the manifest's default) means: ``viseme-table`` is built here and
    opens no file; any other name or ``.safetensors`` path is a learned checkpoint, loaded and
    checked by :func:`~lipdub.model.driver.load_driver`, with a warning where its manifest
    entry's licence is research-only (a studio may not ship such a render).

    Raises:
        WeightsError: no default, no such checkpoint, or one that fails its checks.
    """
    name = driver_name(name, manifest)
    if name in RULE_DRIVERS:
        return VisemeTableDriver()
    # Imported here: both import torch, which the default, rule-based driver never needs.
    from lipdub.model.checkpoint import checkpoint_file
    from lipdub.model.driver import KIND, load_driver

    _, entry = checkpoint_file(name, KIND, "mouth driver", manifest)
    if entry is not None and entry.licence.startswith("research-only"):
        log.warning(
            "generator exemplar uses the mouth driver %s, under terms: %s (the default "
            "driver %r is clean)",
            entry.name,
            entry.licence,
            VISEME_TABLE,
        )
    return LearnedDriver(load_driver(name, manifest))
