"""Only the lower face changes: the exemplar blend mask stays inside the face's own outline.

Issue 27: the mask planner's U (jaw pushed out by its margins, 0.35 IOD and more below the chin,
its top across the nose) let the exemplar path paste the bank frame's collar, hair and nostrils.
"""

from __future__ import annotations

import cv2
import numpy as np

from lipdub.analysis.masks import UShapePlanner
from lipdub.analysis.records import FaceTrack
from lipdub.exemplar.face_bound import NOSE_CLEARANCE, bound_mask, lower_face_outline
from lipdub.exemplar.track import ExemplarTrack
from lipdub.exemplar.warp import destination_landmarks
from tests.exemplar.faces import face_landmarks

SHAPE = (400, 400, 3)
FEATHER = 0.03  # The default feather_fraction.


def _track_mask(target: np.ndarray, dests: list[np.ndarray]) -> np.ndarray:
    """The exemplar track's blend mask of one frame, pasted into a full-frame image."""
    track = FaceTrack(
        track_id=0, frames=np.array([0]), boxes=np.zeros((1, 4)), landmarks=target[None]
    )
    # _mask reads only the track, the planner and the feather: no bank or driver is needed.
    et = ExemplarTrack.__new__(ExemplarTrack)
    et.track, et.planner, et.feather = track, UShapePlanner(), FEATHER
    found = et._mask(0, dests, SHAPE)
    assert found is not None
    (x0, y0, x1, y1), sub = found
    full = np.zeros(SHAPE[:2], np.float32)
    full[y0:y1, x0:x1] = sub
    return full


def _filled(points: np.ndarray) -> np.ndarray:
    out = np.zeros(SHAPE[:2], np.uint8)
    cv2.fillPoly(out, [np.round(points * 16).astype(np.int32)], 1, shift=4)
    return out > 0


def test_the_mask_never_leaves_the_face_or_reaches_the_nose() -> None:
    target = face_landmarks(centre=(200, 140), scale=2.0, opening=0.05)  # IOD 80 px.
    bank = face_landmarks(centre=(60, 50), scale=1.0, opening=0.4)  # Opens wider.
    dest, _ = destination_landmarks(bank, target)
    mask = _track_mask(target, [dest])
    face = _filled(lower_face_outline(target)) | _filled(lower_face_outline(dest))
    # One pixel for the polygon fill's rounding at the edge.
    near = cv2.dilate(face.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert mask.max() > 0.99  # The new mouth is pasted in full somewhere.
    assert not (mask[~near] > 0).any(), "blend mask outside the face's outline"
    nose = _filled(cv2.convexHull(target[27:36].astype(np.float32))[:, 0].astype(np.float64))
    assert not (mask[nose] > 0).any(), "blend mask on the nose"
    # Beside the jaw (a box edge would be there) and a chin's height below it: nothing.
    assert mask[:, : int(target[:17, 0].min()) - 1].max() == 0
    assert mask[int(max(target[8, 1], dest[8, 1])) + 2 :, :].max() == 0


def test_the_bound_ramps_inside_the_outline() -> None:
    target = face_landmarks(centre=(200, 140), scale=2.0)  # IOD 80 px.
    outline = lower_face_outline(target)
    feather = 10.0
    b = bound_mask(target, [], (0, 0, SHAPE[1], SHAPE[0]), feather)
    inside = _filled(outline)
    assert not (b[~inside] > 0).any()
    # Deep inside (the mouth's centre is ≥ 20 px from every edge here): fully the new face.
    mx, my = np.round(target[48:60].mean(0)).astype(int)
    assert b[my, mx] == 1.0
    # The top edge lies NOSE_CLEARANCE IOD below the nose's lowest point, and the ramp under it
    # is done before the upper lip: the lip is pasted whole, never mixed with the source's.
    top = outline[0, 1]
    assert abs(top - (target[31:36, 1].max() + NOSE_CLEARANCE * 80.0)) < 1e-6
    lip_top = int(np.ceil(target[49:54, 1].min()))
    assert (b[lip_top:my, mx] > 0.99).all()
    assert b[int(top) - 1, mx] == 0


def test_the_chin_moves_along_the_face_and_the_jaw_keeps_its_shape() -> None:
    target = face_landmarks(centre=(200, 180), scale=2.0, opening=0.0)
    bank = face_landmarks(centre=(60, 50), scale=1.0, opening=0.4)
    # The bank's jaw outline is another shape (wider cheeks): the target's must not follow it.
    bank[3:14, 0] = 60 + (bank[3:14, 0] - 60) * 1.2
    dest, _ = destination_landmarks(bank, target)
    shift = dest[:17] - target[:17]
    np.testing.assert_allclose(shift[:, 0], 0.0, atol=1e-9)  # Upright face: only vertical moves.
    assert shift[8, 1] > 10  # The chin dropped with the wider mouth (0.4 IOD · 80 px · ramp).
    np.testing.assert_allclose(shift[[0, 1, 2, 14, 15, 16]], 0.0)  # Upper jaw line: the target's.
