"""One face track rendered by the exemplar path: bank → driver targets → selection → faces.

The renderer drives an :class:`ExemplarTrack` through the shot: :meth:`add_frame` while the
source streams past the first time (cutting the track's own bank patches), :meth:`finish` once,
:meth:`plan` per dub (the driver's shape target, resting mouth, Viterbi selection, cross-fades), and
:meth:`face` per frame while the source streams past for the encode, which returns the warped,
colour-matched bank face and its soft mask at the source's own resolution.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lipdub.analysis.align import (
    invert,
    paste_region,
    scale_of,
    similarity_to_template,
    transform_points,
)
from lipdub.analysis.masks import lip_gap
from lipdub.analysis.mouth_class import (
    MouthScale,
    closed_to_show,
    mouth_classes,
    mouth_geometry,
    viseme_costs,
)
from lipdub.analysis.mouth_shape import mouth_shape
from lipdub.analysis.protocols import MaskPlanner
from lipdub.analysis.records import FaceTrack
from lipdub.analysis.rest import RestPlan
from lipdub.errors import ConfigError
from lipdub.exemplar.bank import Bank, BankPart, PartBuilder, iod, pose
from lipdub.exemplar.face_bound import bound_mask
from lipdub.exemplar.select import (
    SelectWeights,
    apart_costs,
    fade_plan,
    match_costs,
    replay_costs,
    require_closed,
    select_path,
    viseme_costs_over_time,
)
from lipdub.exemplar.target import ActorMouths, ShapeDriver
from lipdub.exemplar.warp import CONTROL, destination_landmarks, match_colour, piecewise_affine
from lipdub.phonetics.track import VisemeTrack
from lipdub.phonetics.visemes import Viseme

log = logging.getLogger(__name__)

#: Side of the aligned crop the mask planner draws M in (smooth; the feather hides its pixels).
MASK_SIZE = 256
#: Outer-lip points; their polygon (dilated) is left out of the colour comparison.
OUTER_LIPS = slice(48, 60)


@dataclass(frozen=True)
class ExemplarSettings:
    """Options of the exemplar generator (``stage_options.generator``, when it is exemplar)."""

    holdout: int = 0  # Never show a bank frame within ±this many frames of the output frame
    # of the same source (self-driven measurement: the true frame is not allowed).
    fade: int = 1  # Cross-fade half-width at joins between selected runs, frames.
    min_frames: int = 25  # Fewer usable bank frames than this is too thin (see `fallback`).
    min_spread: float = 0.03  # Inner-lip gap spread (IOD, 10th–90th percentile) below this is
    # too thin (an actor who never opens their mouth).
    shape: float = SelectWeights.shape
    yaw: float = SelectWeights.yaw
    pitch: float = SelectWeights.pitch
    light: float = SelectWeights.light
    jump: float = SelectWeights.jump
    hold: float = SelectWeights.hold
    run_bonus: float = SelectWeights.run_bonus
    viseme: float = SelectWeights.viseme
    replay: float = SelectWeights.replay
    apart: float = SelectWeights.apart
    closure_lead: int = 1  # Frames before each p/b/m's start that must show closed lips too.

    @classmethod
    def from_options(cls, options: dict[str, Any], where: str = "exemplar") -> ExemplarSettings:
        """Checked settings from an options block; an unknown key is a ConfigError."""
        names = {f.name: f for f in fields(cls)}
        for key, value in options.items():
            if key not in names:
                raise ConfigError(
                    f"{where}: unknown exemplar option {key!r} (known: {', '.join(names)})"
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{where}: exemplar option {key!r} must be a number ≥ 0")
        typed = {k: type(getattr(cls, k))(v) for k, v in options.items()}
        return cls(**typed)

    @property
    def weights(self) -> SelectWeights:
        """The selection weights."""
        return SelectWeights(
            self.shape,
            self.yaw,
            self.pitch,
            self.light,
            self.jump,
            self.hold,
            self.run_bonus,
            viseme=self.viseme,
            replay=self.replay,
            apart=self.apart,
        )


@dataclass(frozen=True)
class ClosureReport:
    """What one dub's plan asked of the bank for its p/b/m, and what the bank could give."""

    bilabials: int = 0  # The dub's p/b/m on this track's frames.
    frames: int = 0  # Output frames required to show closed lips.
    missed: int = 0  # Of those, frames no closed bank frame could be shown at.
    bank_closed: int = 0  # Bank frames whose lips are closed (0: none to show).
    bank_classes: dict[str, int] = field(default_factory=dict)  # Bank frames per mouth class.


def thin_reason(parts_landmarks: list[np.ndarray], settings: ExemplarSettings) -> str | None:
    """Why a bank of these landmark sets is too thin to dub from (None: it is not).

    Judged from landmarks alone, before any pixel is read, so the renderer can decide what a
    thin track gets (the source's frames, or the ``fallback`` generator) before its single pass
    over the source.
    """
    lms = [np.asarray(x, np.float64).reshape(-1, 68, 2) for x in parts_landmarks]
    lm = np.concatenate(lms) if lms else np.zeros((0, 68, 2))
    if len(lm) < settings.min_frames:
        return f"{len(lm)} frames of this actor (fewer than {settings.min_frames})"
    gap = lip_gap(lm) / iod(lm)
    spread = float(np.quantile(gap, 0.9) - np.quantile(gap, 0.1))
    if spread < settings.min_spread:
        return (
            f"too few distinct mouth shapes (opening spread {spread:.3f} IOD, "
            f"below {settings.min_spread})"
        )
    return None


class ExemplarTrack:
    """See the module doc."""

    def __init__(
        self,
        track: FaceTrack,
        frame_shape: tuple[int, ...],
        source: str,
        scratch: Path | None,
        extra: list[BankPart],
        driver: ShapeDriver,
        planner: MaskPlanner,
        feather: float,
        settings: ExemplarSettings,
    ) -> None:
        """Arguments:
        track: the face track being dubbed (frames counted from the shot's first frame).
        frame_shape: (H, W, 3) of the shot's frames.
        source: label of the shot's footage (holdout compares bank sources against it).
        scratch: folder for the memory-mapped patches (None: in memory).
        extra: more parts of the actor's bank (their other footage, from personalize).
        driver: dub → target mouth shape (:mod:`lipdub.exemplar.target`).
        planner: the mask stage (M is drawn in an aligned crop and warped to the frame).
        feather: blend feather as a fraction of the aligned crop's side.
        settings: the options.
        """
        self.track, self.source, self.extra = track, source, extra
        self.driver, self.planner, self.settings = driver, planner, settings
        self.feather = feather
        file = None if scratch is None else scratch / f"track{track.track_id}_bank.npy"
        self.builder = PartBuilder(source, track, frame_shape, file)
        self.bank: Bank | None = None
        self.plan_: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.closures = ClosureReport()

    def add_frame(self, j: int, frame: np.ndarray) -> None:
        """Track frame ``j`` as the source streams past (first pass)."""
        self.builder.add(j, frame)

    def finish(self) -> None:
        """Build the bank once every frame was added."""
        own = self.builder.finish()
        self.own = own
        self.bank = Bank.of([own, *self.extra])
        if len(self.bank) == 0:
            raise ValueError(f"track {self.track.track_id}: no usable bank frame")
        self.basis = self.driver.basis(self.bank.shapes)
        self.coef = self.basis.project(self.bank.shapes)
        self.sigma = self.coef.std(0)
        self.target_pose = pose(self.track.landmarks).reshape(-1, 2)
        geom = mouth_geometry(self.bank.raw_shapes)
        scale = MouthScale.of(geom)
        self.geom, self.scale = geom, scale
        self.closed = closed_to_show(geom, scale)
        self.viseme_cost = viseme_costs(geom, scale)
        self.classes = mouth_classes(geom, scale)
        self.mouths = ActorMouths(self.coef, self.classes, geom.gap, geom.width)
        self.closures = self._report()

    def _report(self, bilabials: int = 0, frames: int = 0, missed: int = 0) -> ClosureReport:
        return ClosureReport(
            bilabials=bilabials,
            frames=frames,
            missed=missed,
            bank_closed=int(self.closed.sum()),
            bank_classes={v.name.lower(): int((self.classes == int(v)).sum()) for v in Viseme},
        )

    def plan(
        self,
        audio_16k: np.ndarray,
        fps: Fraction,
        rest: RestPlan | None,
        visemes: VisemeTrack | None = None,
    ) -> np.ndarray:
        """Choose the bank frames for one dub; returns the (T,) selected bank indices.

        With ``visemes`` (the dub's viseme track, frames from the shot's first), the dub's visemes
        add their cost and every p/b/m must show closed lips (:func:`require_closed`);
        :attr:`closures` reports what was asked and granted."""
        assert self.bank is not None, "finish() first"
        t = self.track
        target = self.driver.targets(self.mouths, audio_16k, fps, np.asarray(t.frames), visemes)
        if rest is not None and rest.rest_frame is not None:
            # Resting frames ask for the track's own most closed mouth.
            lm = t.landmarks[rest.rest_frame][None]
            from_rest = self.basis.project(mouth_shape(lm))[0]
            g, r = rest.generated[:, None], rest.rest[:, None]
            total = np.maximum(g + r, 1e-6)
            target = np.where(r > 0, (g * target + r * from_rest) / total, target)
        unary = match_costs(
            target,
            self.coef,
            self.sigma,
            self.target_pose,
            self.bank.pose,
            self.own.light,
            self.bank.light,
            self.settings.weights,
            self.bank.sharp,
        )
        target_gap = mouth_geometry(self.basis.unproject(target)).gap
        unary += apart_costs(target_gap, self.geom.gap, self.scale.closed, self.settings.apart)
        labels, frames = self.bank.sources()
        same = np.array([lab == self.source for lab in labels], bool)
        unary += replay_costs(np.asarray(t.frames), frames, same, self.settings.replay)
        if self.settings.holdout > 0:
            near = np.abs(np.asarray(t.frames)[:, None] - frames[None, :]) <= self.settings.holdout
            unary[near & same[None, :]] = np.inf
            if not np.isfinite(unary).any(axis=1).all():
                raise ValueError("holdout leaves no bank frame for some output frame")
        self._pinned = np.zeros(len(t), bool)
        if visemes is not None and self.settings.viseme > 0:
            self._add_visemes(unary, visemes, rest)
        path = select_path(unary, self.bank.follows, self.settings.weights)
        self.plan_ = fade_plan(path, self.bank.follows, self.settings.fade, self._pinned)
        step = np.diff(path)
        joins = int((~((step == 1) & self.bank.follows[path[1:]]) & (step != 0)).sum())
        log.info(
            "track %d: %d bank frames in %d part(s), target by %s; %d frames, %d joins (runs of "
            "%.1f frames)",
            t.track_id,
            len(self.bank),
            len(self.bank.parts),
            self.driver.name,
            len(path),
            joins,
            len(path) / (joins + 1),
        )
        return path

    def _add_visemes(self, unary: np.ndarray, visemes: VisemeTrack, rest: RestPlan | None) -> None:
        """Add the dub's viseme costs to ``unary`` and require closed lips on its p/b/m."""
        t = self.track
        shot_frames = np.asarray(t.frames)
        inside = shot_frames < len(visemes.posteriors)
        post = np.zeros((len(shot_frames), visemes.posteriors.shape[1]), np.float64)
        post[inside] = visemes.posteriors[shot_frames[inside]]
        unary += viseme_costs_over_time(post, self.viseme_cost, self.settings.viseme)
        index = {int(f): j for j, f in enumerate(shot_frames)}
        asked = [c for c in visemes.closures if c.frame in index]
        wanted = sorted(
            {
                index[f]
                for c in asked
                for f in range(c.frame - self.settings.closure_lead, c.frame + 1)
                if f in index
            }
        )
        if rest is not None:  # Frames that rest on the source's own mouth need no closing.
            wanted = [j for j in wanted if rest.generated[j] > 0]
        missed = require_closed(unary, wanted, self.closed) if self.closed.any() else wanted
        self._pinned[sorted(set(wanted) - set(missed))] = True
        self.closures = self._report(len(asked), len(wanted), len(missed))
        if not self.closed.any():
            log.warning("track %d: no closed-lip frame in the bank", t.track_id)

    def _mask(
        self, j: int, dests: list[np.ndarray], shape: tuple[int, ...]
    ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """Frame box and soft mask covering the target's lower face and every new one.

        The planner's mask is cut by the face's own outline (:mod:`lipdub.exemplar.face_bound`):
        nothing beyond the jaw line or above the line under the nose is ever blended.
        """
        target = self.track.landmarks[j]
        matrix = similarity_to_template(target, MASK_SIZE)
        crop = self.planner.plan(transform_points(matrix, target), MASK_SIZE)
        for d in dests:
            crop = np.maximum(crop, self.planner.plan(transform_points(matrix, d), MASK_SIZE))
        box = paste_region(matrix, MASK_SIZE, shape)
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            return None
        feather_px = self.feather * MASK_SIZE / scale_of(matrix)
        mask = self.planner.blend_mask(crop, matrix, box, feather_px)
        mask *= bound_mask(target, dests, box, feather_px)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(rows) == 0:
            return None
        x0, y0 = box[0] + int(cols[0]), box[1] + int(rows[0])
        x1, y1 = box[0] + int(cols[-1]) + 1, box[1] + int(rows[-1]) + 1
        sub = mask[y0 - box[1] : y1 - box[1], x0 - box[0] : x1 - box[0]]
        return (x0, y0, x1, y1), np.ascontiguousarray(sub)

    def _picks(self, j: int) -> list[tuple[int, float]]:
        """Bank frames shown at track frame ``j`` and their weights (two across a join)."""
        assert self.plan_ is not None, "plan() first"
        first, second, alpha = self.plan_
        a = float(alpha[j])
        return [(int(first[j]), 1.0 - a), (int(second[j]), a)] if a > 0 else [(int(first[j]), 1.0)]

    def _placed(self, b: int, j: int) -> tuple[BankPart, int, np.ndarray, np.ndarray, np.ndarray]:
        """Bank frame ``b`` brought onto track frame ``j``: part, index, its patch landmarks,
        their destinations and the pose (bank patch → frame)."""
        assert self.bank is not None
        part, i = self.bank.frame_of(b)
        src_lm = part.patch_landmarks(i)
        dest, pose_m = destination_landmarks(src_lm, self.track.landmarks[j])
        return part, i, src_lm, dest, pose_m

    def _morphed(
        self, j: int
    ) -> list[tuple[tuple[BankPart, int, np.ndarray, np.ndarray, np.ndarray], float]]:
        """The picks of track frame ``j``, each placed, and their weights. Across a join both
        bank frames are warped onto one destination, the weighted mean of their own (a
        landmark-guided morph): the lips of the two meet in one place and only their texture
        cross-fades, instead of two mouths showing through each other."""
        placed = [(self._placed(b, j), w) for b, w in self._picks(j)]
        if len(placed) < 2:
            return placed
        dest = np.sum([w * p[3] for p, w in placed], axis=0)
        return [((part, i, src, dest, pose_m), w) for (part, i, src, _, pose_m), w in placed]

    def region(
        self, j: int, shape: tuple[int, ...]
    ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """Frame box and soft blend mask of track frame ``j`` for the planned dub."""
        return self._mask(j, [p[3] for p, _ in self._morphed(j)], shape)

    def face(
        self, j: int, frame: np.ndarray
    ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray] | None:
        """The new lower face of track frame ``j``: frame box, face pixels and soft mask."""
        placed = self._morphed(j)
        found = self._mask(j, [p[3] for p, _ in placed], frame.shape)
        if found is None:
            return None
        box, mask = found
        acc = np.zeros((box[3] - box[1], box[2] - box[0], 3), np.float32)
        ctrl = list(CONTROL)
        for (part, i, src_lm, dest, pose_m), w in placed:
            warped = piecewise_affine(part.patch(i), src_lm[ctrl], dest[ctrl], box, invert(pose_m))
            acc += w * warped.astype(np.float32)
        face = np.clip(acc + 0.5, 0, 255).astype(np.uint8)
        x0, y0, x1, y1 = box
        skin = (mask > 0.3) & ~self._lips(j, box, [p[3] for p, _ in placed])
        return box, match_colour(face, frame[y0:y1, x0:x1], skin), mask

    def _lips(self, j: int, box: tuple[int, int, int, int], dests: list[np.ndarray]) -> np.ndarray:
        """Where the target's or the new lips lie in ``box`` (dilated), as a bool image."""
        x0, y0, x1, y1 = box
        out = np.zeros((y1 - y0, x1 - x0), np.uint8)
        lms = [self.track.landmarks[j], *dests]
        for lm in lms:
            pts = np.round((np.asarray(lm)[OUTER_LIPS] - (x0, y0)) * 16).astype(np.int32)
            cv2.fillPoly(out, [pts], 1, lineType=cv2.LINE_8, shift=4)
        r = max(1, round(0.1 * float(iod(self.track.landmarks[j]))))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        return cv2.dilate(out, kernel) > 0
