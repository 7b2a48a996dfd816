"""The per-frame face work of a shot: detect, follow, fit landmarks, track, describe.

The face detector runs on every ``detect_every``-th frame (and the first frame after a cut) on a
resized copy. With a landmarker that scores its faces (the mesh's presence score) the whole frame
is searched every ``detect_every_scored``-th frame (by default as often as without), on the frame
after a face's score fell below ``redetect_below``, and while no face is followed; on the other
``detect_every``-th frames the detector confirms each followed face in a small region around it.
Between those frames each face is carried by its landmarks: the box it was detected with is kept
relative to its landmarks and re-placed around the previous frame's landmarks, and the 68
landmarks are fitted again on every frame at full resolution by the landmarker stage. A followed
face the detector misses gets a second look (the mmod CNN around it, then its descriptor); one
missed ``max_missed_detections`` times in a row is dropped (its unconfirmed frames trimmed by the
tracker).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from scipy.optimize import linear_sum_assignment

from lipdub.analysis.detection import detect_in_frame, detect_in_region
from lipdub.analysis.faces import DlibFaceDetector
from lipdub.analysis.protocols import FaceDetector, FollowingLandmarker, Tracker
from lipdub.analysis.records import FaceObservation
from lipdub.analysis.settings import AnalysisSettings
from lipdub.analysis.tracking import appearance, iou

#: A detection confirms a carried face when their boxes overlap at least this much.
CONFIRM_IOU = 0.3
#: ...or when the detection's centre is within this many box sides of the carried box's.
CONFIRM_DISTANCE = 0.35
#: A missed face is still there if its descriptor moved less than this (stricter than dlib's
#: 0.6 same-person distance: it is the same face a few frames later).
VERIFY_DISTANCE = 0.45
#: Weight of a new detection's box in a followed face's box geometry.
REL_MOMENTUM = 0.1
#: Two faces of one frame overlapping more than this are one face (the detected one is kept).
DUPLICATE_IOU = 0.5
#: ...or when this share of the smaller one lies inside the other.
CONTAINED = 0.6
#: A carried face is dropped when less than this fraction of its box is inside the frame.
MIN_INSIDE = 0.6
#: The detectors dlib's mmod CNN backs up (``cnn_fallback``): HOG misses turned faces, and
#: BlazeFace misses some half-turned faces at a shot's first frames (LRS2 00009: frames 0-1).
FALLBACK_FOR = ("dlib-hog", "blazeface")


@dataclass
class _Face:
    """A face being followed: its box, whether the detector saw it, and how the box sits.

    ``rel`` is the box relative to the landmarks' centre and extent, fixed when the face is first
    detected and nudged towards later detections; between detections the box is re-placed around
    the landmarks with it, so the shape predictor always sees the face framed the same way (a
    box that jumped to each new detection would make the landmarks jump every few frames).

    When a detector pass misses a followed face (HOG misses half-turned and blurred faces), the
    fallback detector looks again around it; failing that, its descriptor on this frame is
    compared with its latest one and if they still match the face is kept (``verified``);
    otherwise it counts as a miss.
    """

    box: np.ndarray
    detected: bool
    score: float = 0.0
    misses: int = 0  # Detector passes in a row that did not confirm it.
    checked: bool = False  # A detector pass ran on this frame.
    verified: bool = False  # Missed by the detector but its descriptor still matches.
    rel: np.ndarray | None = None
    ref: np.ndarray | None = None  # Its latest face descriptor, to verify it when missed.
    roi: Any = None  # The landmarker's crop from the previous frame (a followed face), or None.

    def follow(self, landmarks: np.ndarray, roi: Any = None) -> _Face:
        """The same face on the next frame, boxed around ``landmarks`` (this frame's); ``roi``:
        the crop the landmarker framed on them, if it keeps one."""
        centre, scale = _frame_of(landmarks)
        if self.rel is None:
            self.rel = (np.asarray(self.box, np.float64) - np.tile(centre, 2)) / scale
        box = np.tile(centre, 2) + self.rel * scale
        return _Face(box, False, 0.0, self.misses, rel=self.rel, ref=self.ref, roi=roi)

    def confirm(self, det_box: np.ndarray, score: float, landmarks: np.ndarray) -> None:
        """A detection overlaps this face: reset misses, nudge ``rel`` towards its box."""
        centre, scale = _frame_of(landmarks)
        target = (np.asarray(det_box, np.float64) - np.tile(centre, 2)) / scale
        assert self.rel is not None, "only a followed face is confirmed, and follow() sets rel"
        self.rel = (1 - REL_MOMENTUM) * self.rel + REL_MOMENTUM * target
        self.detected, self.score, self.misses = True, score, 0


def _frame_of(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    lm = np.asarray(landmarks, np.float64)
    return lm.mean(axis=0), max(float(np.ptp(lm, axis=0).max()), 1.0)


class FacePass:
    """The per-frame face work of one shot (detector, carry, landmarks, tracker, descriptors)."""

    def __init__(
        self,
        detector: FaceDetector,
        tracker: Tracker,
        settings: AnalysisSettings,
        width: int,
        height: int,
    ) -> None:
        self.detector, self.tracker, self.s = detector, tracker, settings
        self.fallback: FaceDetector | None = None
        own = getattr(detector, "detector", detector)  # The detector behind a landmarker.
        if settings.cnn_fallback and getattr(own, "name", "") in FALLBACK_FOR:
            self.fallback = DlibFaceDetector("cnn")
        self.width, self.height = width, height
        self.faces: list[tuple[_Face, np.ndarray]] = []  # Previous frame's faces and landmarks.
        self.rois: list[Any] = []  # The landmarker's crops of those faces, when it keeps them.
        self.small: list[float] = []  # Sides of detections ignored as too small.
        self.desc_last: dict[int, int] = {}
        self.detector_seconds = 0.0
        self.unsure = False  # The landmarker's score of a face fell: detect on the next frame.

    def step(self, i: int, frame: np.ndarray, new_shot: bool) -> None:
        """Find, carry, fit and track the faces of shot frame ``i``."""
        s = self.s
        if new_shot:
            self.faces, self.rois = [], []
        rois = self.rois if len(self.rois) == len(self.faces) else [None] * len(self.faces)
        carried = [f.follow(lm, r) for (f, lm), r in zip(self.faces, rois, strict=True)]
        prev_lms = [lm for _, lm in self.faces]
        cands = carried
        scored = carried and getattr(self.detector, "scores", None) is not None
        every = s.detect_every_scored if scored else s.detect_every
        whole = new_shot or self.unsure or i % every == 0
        local = not whole and i % s.detect_every == 0
        if whole or local:
            t0 = time.perf_counter()
            dropped: list[float] = []
            if whole:
                dets = detect_in_frame(frame, self.detector, s, dropped)
            else:  # Confirm the followed faces where they are: a small region around each.
                dets = [d for c in carried for d in detect_in_region(frame, c.box, self.detector)]
            look = new_shot or i % s.fallback_every == 0
            if not dets and not carried and self.fallback is not None and look:
                dets = detect_in_frame(frame, self.fallback, s, dropped)
            self.small += dropped
            pairs = self._match([c.box for c in carried], [d[0] for d in dets])
            cands = []
            for k, c in enumerate(carried):
                c.checked = True
                second = self._second_look(frame, c) if k not in pairs else None
                if k in pairs:
                    c.confirm(dets[pairs[k]][0], dets[pairs[k]][1], prev_lms[k])
                    cands.append(c)
                elif second is not None:  # Re-anchored on the face the fallback found.
                    c.box, c.rel, c.roi = second[0], None, None
                    c.detected, c.score, c.misses = True, second[1], 0
                    cands.append(c)
                elif c.misses + 1 <= s.max_missed_detections:
                    c.misses += 1
                    cands.append(c)
            # New faces come from whole-frame passes only: a region search only confirms (HOG
            # finds chins and collars in a close-up's region, never in the whole frame).
            taken = set(pairs.values()) if whole else set(range(len(dets)))
            cands += [
                _Face(b, True, sc, checked=True) for j, (b, sc) in enumerate(dets) if j not in taken
            ]
            self.detector_seconds += time.perf_counter() - t0
        cands = _dedupe([c for c in cands if self._usable(c.box)])
        lms: Any = self._landmarks(frame, cands) if cands else []
        scores = getattr(self.detector, "scores", None) if cands else None
        self.unsure = scores is not None and bool((scores < s.redetect_below).any())
        self._verify(frame, cands, lms)
        obs = [
            FaceObservation(
                box=c.box,
                landmarks=lm,
                score=c.score,
                detected=c.detected,
                missed=c.checked and not c.detected and not c.verified,
                appearance=appearance(frame, c.box),
            )
            for c, lm in zip(cands, lms, strict=True)
        ]
        ids = self.tracker.update(i, obs, new_shot)
        self._descriptors(i, frame, obs, ids, cands)
        self.faces = list(zip(cands, lms, strict=True))
        self.rois = list(getattr(self.detector, "rois", None) or []) if cands else []

    def _landmarks(self, frame: np.ndarray, cands: list[_Face]) -> np.ndarray:
        """The faces' landmarks; a landmarker that follows faces gets their previous crops."""
        boxes = [c.box for c in cands]
        if getattr(self.detector, "follows", False):  # A FacesWithLandmarker that follows.
            following = cast(FollowingLandmarker, self.detector)
            return following.landmarks(frame, boxes, rois=[c.roi for c in cands])
        return self.detector.landmarks(frame, boxes)

    def _second_look(self, frame: np.ndarray, face: _Face) -> tuple[np.ndarray, float] | None:
        """The fallback detector around a followed face the main detector missed."""
        if self.fallback is None:
            return None
        found = detect_in_region(frame, face.box, self.fallback)
        best = max(found, key=lambda f: iou(face.box, f[0]), default=None)
        return best if best is not None and iou(face.box, best[0]) >= CONFIRM_IOU else None

    def _verify(self, frame: np.ndarray, cands: list[_Face], lms: np.ndarray | list) -> None:
        """Keep followed faces a detector pass missed if their descriptor still matches."""
        missed = [
            k for k, c in enumerate(cands) if c.checked and not c.detected and c.ref is not None
        ]
        if not missed:
            return
        descs = self.detector.descriptors(frame, [lms[k] for k in missed])
        for k, d in zip(missed, descs, strict=True):
            c = cands[k]
            if float(np.linalg.norm(d - c.ref)) < VERIFY_DISTANCE:
                c.verified, c.misses, c.ref = True, 0, d

    def _match(self, carried: list[np.ndarray], dets: list[np.ndarray]) -> dict[int, int]:
        """Carried face index -> index of the detection that confirms it.

        A detection confirms a carried face when their boxes overlap, or when its centre is
        close to the carried box's (landmarks on a turned face drift; the box follows them).
        """
        if not carried or not dets:
            return {}
        cost = np.array([[1.0 - _likeness(c, d) for d in dets] for c in carried])
        rows, cols = linear_sum_assignment(cost)
        ok = zip(rows, cols, strict=True)
        return {int(r): int(c) for r, c in ok if cost[r, c] <= 1.0 - CONFIRM_IOU}

    def _usable(self, box: np.ndarray) -> bool:
        side = min(box[2] - box[0], box[3] - box[1])
        if side < self.s.min_face_px:
            return False
        ix = max(0.0, min(box[2], self.width) - max(box[0], 0.0))
        iy = max(0.0, min(box[3], self.height) - max(box[1], 0.0))
        return ix * iy >= MIN_INSIDE * (box[2] - box[0]) * (box[3] - box[1])

    def _descriptors(
        self,
        i: int,
        frame: np.ndarray,
        obs: list[FaceObservation],
        ids: list[int],
        cands: list[_Face],
    ) -> None:
        """A descriptor every ``descriptor_every`` frames per track, on detected frames."""
        want = [
            k
            for k, t in enumerate(ids)
            if obs[k].detected and i - self.desc_last.get(t, -(10**9)) >= self.s.descriptor_every
        ]
        if not want:
            return
        descs = self.detector.descriptors(frame, [obs[k].landmarks for k in want])
        for k, d in zip(want, descs, strict=True):
            obs[k].descriptor = cands[k].ref = d
            self.desc_last[ids[k]] = i


def _dedupe(cands: list[_Face]) -> list[_Face]:
    """Drop faces that overlap a better one (detected before carried, then by score).

    Overlap is IoU, or the share of the smaller box inside the other: HOG's rare false hits
    sit on a face's chin or collar, half inside the real face's box.
    """
    kept: list[_Face] = []
    for c in sorted(cands, key=lambda c: (not c.detected, -c.score)):
        if all(iou(c.box, k.box) <= DUPLICATE_IOU and _inside(c.box, k.box) <= CONTAINED
               for k in kept):  # fmt: skip
            kept.append(c)
    return kept


def _likeness(carried: np.ndarray, det: np.ndarray) -> float:
    """IoU, raised to CONFIRM_IOU when the centres are within CONFIRM_DISTANCE box sides."""
    side = max(carried[2] - carried[0], 1.0)
    dist = np.hypot(*((carried[:2] + carried[2:]) / 2 - (det[:2] + det[2:]) / 2))
    near = CONFIRM_IOU if dist < CONFIRM_DISTANCE * side else 0.0
    return max(iou(carried, det), near)


def _inside(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection of two boxes over the smaller one's area."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    small = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(ix * iy / small) if small > 0 else 0.0
