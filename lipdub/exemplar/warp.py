"""Bring a bank frame's lower face onto a target frame: pose alignment, landmark warp, colour.

Video Rewrite and VDub move a real mouth from one frame of the actor to another by the face's
landmarks. Here that is two steps, both at the source's own resolution:

1. **Destination landmarks** (:func:`destination_landmarks`). A similarity fitted on the points
   that do not move when the actor speaks (eye corners, nose) aligns the bank frame's landmarks
   to the target's pose. The new mouth is the *bank's* (that is the shape selection chose);
   nose, eyes and the jaw contour stay the *target's*, except that the chin moves along the
   face's down axis by as much as the bank's chin sits lower or higher (a wider-open mouth drops
   it), fading out along the jaw to nothing at the upper jaw line. The contour keeps the
   target's shape: the bank's own jaw points (noisy, and another head's outline against the
   background) never move it sideways, so the jaw line does not wobble from frame to frame.
2. **Piecewise-affine warp** (:func:`piecewise_affine`) of the bank patch from its landmarks to
   the destination landmarks over a Delaunay triangulation; pixels outside every triangle follow
   the pose similarity. Sampling is bicubic, once, so the texture keeps its detail.

:func:`match_colour` then moves the warped face's colour onto the target's (per-channel gain on
the skin around the mouth), so a bank frame from another light still fits.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from lipdub.analysis.records import JAW, MOUTH
from lipdub.exemplar.face_bound import down_axis

#: Landmarks that do not move with speech: eye corners, nose bridge and nose (dlib 68 indices).
STABLE = (36, 39, 42, 45, 27, 28, 29, 30, 31, 33, 35)
#: Per jaw point (0..16), how much of the chin's drop (bank vs target, along the face's down
#: axis) it takes: the chin and lower jaw move with the mouth, the upper jaw line stays put.
JAW_FROM_BANK = np.array(
    [0, 0, 0, 0.15, 0.45, 0.8, 1, 1, 1, 1, 1, 0.8, 0.45, 0.15, 0, 0, 0], np.float64
)
#: Control points of the warp: jaw, nose, eye corners and mouth.
CONTROL = (*range(0, 17), *range(27, 36), 36, 39, 42, 45, *range(48, 68))
#: Chin points (dlib 68) whose mean displacement is the chin's drop.
CHIN = (7, 8, 9)
#: Colour gains are kept within this range (a larger one means another scene, not a light).
GAIN_RANGE = (0.7, 1.4)


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(2, 3) least-squares similarity (rotation, uniform scale, shift) taking ``src`` to ``dst``.

    Umeyama's closed form without reflection; (N, 2) point sets, N ≥ 2.
    """
    s = np.asarray(src, np.float64)
    d = np.asarray(dst, np.float64)
    ms, md = s.mean(0), d.mean(0)
    sc, dc = s - ms, d - md
    var = (sc**2).sum()
    if var < 1e-12:
        return np.hstack([np.eye(2), (md - ms)[:, None]])
    # Complex form: z_d = a·z_s + t, a = Σ conj(z_s)·z_d / Σ |z_s|².
    zs = sc[:, 0] + 1j * sc[:, 1]
    zd = dc[:, 0] + 1j * dc[:, 1]
    a = (np.conj(zs) * zd).sum() / var
    rot = np.array([[a.real, -a.imag], [a.imag, a.real]])
    return np.hstack([rot, (md - rot @ ms)[:, None]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(..., 2) points through a (2, 3) affine matrix."""
    m = np.asarray(matrix, np.float64)
    return np.asarray(points, np.float64) @ m[:, :2].T + m[:, 2]


def destination_landmarks(
    bank_lm: np.ndarray, target_lm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Where the bank frame's landmarks go in the target frame (see the module doc).

    Arguments:
        bank_lm: (68, 2) landmarks of the bank frame (any coordinates, e.g. its patch's).
        target_lm: (68, 2) landmarks of the target frame, frame pixels.

    Returns:
        ``(dest, pose)``: (68, 2) destination landmarks in target pixels, and the (2, 3) pose
        similarity from bank coordinates to target pixels.
    """
    bank = np.asarray(bank_lm, np.float64)
    target = np.asarray(target_lm, np.float64)
    pose = fit_similarity(bank[list(STABLE)], target[list(STABLE)])
    aligned = apply(pose, bank)
    dest = target.copy()
    dest[MOUTH] = aligned[MOUTH]
    down = down_axis(target)
    drop = float((aligned[list(CHIN)] - target[list(CHIN)]).mean(0) @ down)
    dest[JAW] = target[JAW] + JAW_FROM_BANK[:, None] * drop * down
    return dest, pose


def _border_points(box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    xm, ym = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    return np.array(
        [[x0, y0], [xm, y0], [x1, y0], [x1, ym], [x1, y1], [xm, y1], [x0, y1], [x0, ym]],
        np.float64,
    )


def piecewise_affine(
    src: np.ndarray,
    src_pts: np.ndarray,
    dst_pts: np.ndarray,
    box: tuple[int, int, int, int],
    outside: np.ndarray,
) -> np.ndarray:
    """Warp ``src`` so that ``src_pts`` land on ``dst_pts``, sampled over the target ``box``.

    Arguments:
        src: (H, W, C) image the points ``src_pts`` refer to.
        src_pts: (P, 2) control points in ``src`` pixels.
        dst_pts: (P, 2) where they go, target pixels.
        box: target region ``(x0, y0, x1, y1)`` (exclusive ends) to produce.
        outside: (2, 3) target-to-source affine for pixels outside every triangle; the box's
            border also follows it, so the warp fades into a plain pose alignment.

    Returns:
        (y1 - y0, x1 - x0, C) image in ``src``'s dtype (bicubic; edges replicate).
    """
    x0, y0, x1, y1 = box
    h, w = y1 - y0, x1 - x0
    border = _border_points((x0 - 1, y0 - 1, x1, y1))
    dst = np.vstack([np.asarray(dst_pts, np.float64), border])
    srcp = np.vstack([np.asarray(src_pts, np.float64), apply(outside, border)])
    tri = Delaunay(dst).simplices
    index = np.full((h, w), len(tri), np.int32)  # Last slot: the ``outside`` affine.
    affines = np.empty((len(tri) + 1, 2, 3), np.float64)
    affines[-1] = outside
    origin = np.array([x0, y0], np.float64)
    for k, t in enumerate(tri):
        d, s = dst[t], srcp[t]
        (ax, ay), (bx, by) = d[1] - d[0], d[2] - d[0]
        area = ax * by - ay * bx
        if abs(area) < 1e-6:
            affines[k] = outside
            continue
        affines[k] = cv2.getAffineTransform(d.astype(np.float32), s.astype(np.float32))
        local = np.round((d - origin) * 16).astype(np.int32)
        cv2.fillConvexPoly(index, local, k, lineType=cv2.LINE_8, shift=4)
    # Each coefficient gathered on its own and a row and a column broadcast against each other:
    # the same float64 maps as an (h, w, 2, 3) gather over full grids, with far less memory.
    xs = np.arange(x0, x1, dtype=np.float64)[None, :]
    ys = np.arange(y0, y1, dtype=np.float64)[:, None]
    c = affines.reshape(len(affines), 6)
    map_x = c[:, 0][index] * xs + c[:, 1][index] * ys + c[:, 2][index]
    map_y = c[:, 3][index] * xs + c[:, 4][index] * ys + c[:, 5][index]
    return cv2.remap(
        src,
        map_x.astype(np.float32),
        map_y.astype(np.float32),
        interpolation=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REPLICATE,
    )


def match_colour(face: np.ndarray, target: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``face`` with each channel scaled so its mean over ``region`` equals ``target``'s.

    Arguments:
        face: (h, w, 3) uint8 warped bank face.
        target: (h, w, 3) uint8 the target frame's same region.
        region: (h, w) bool skin to compare on (the mask without the mouth's inside).
    """
    if region.sum() < 16:
        return face
    f = face[region].astype(np.float64).mean(0)
    t = target[region].astype(np.float64).mean(0)
    gain = np.clip((t + 1.0) / (f + 1.0), *GAIN_RANGE)
    out = face.astype(np.float32) * gain.astype(np.float32)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
