"""The U-shaped lower-face mask M ("u-shape"), in crop space, and its soft twin in frame space.

StyleSync masks a U over mouth, cheeks and jaw and regenerates it from audio. The U here is cut
from the landmarks of each frame: its sides follow the jaw line pushed outward, its bottom runs
below the chin, its top crosses the nose. Following StyleLipSync's pose-aware masking, it grows
with the mouth's opening (a dub may open the jaw wider than the source did) and with the head's
yaw on the far side (where the jaw line of a turned head swings out). Margins are in units of the
inter-ocular distance (IOD), so the same settings work at 256 and 128.

``blend_mask`` warps M back into the frame and feathers it; it is exactly 0 outside M dilated
by the feather width, so a blend with it leaves every other pixel untouched.
"""

from __future__ import annotations

import cv2
import numpy as np

from lipdub.analysis.align import warp_to_frame
from lipdub.analysis.records import JAW, LEFT_EYE, RIGHT_EYE
from lipdub.analysis.settings import AnalysisSettings

#: Fixed-point bits for sub-pixel polygon filling (cv2.fillPoly ``shift``).
SUBPIXEL_BITS = 4
#: Crop size the ``mask_soften_px`` setting is given at.
REFERENCE_SIZE = 256
#: Soft-mask values below this are set to 0 (they would round to no change in 8 bits anyway).
MASK_FLOOR = 1.0 / 512.0
#: Inner-lip points: upper (61-63) and lower (65-67) lip; their gap is the mouth's opening.
INNER_UPPER = (61, 62, 63)
INNER_LOWER = (67, 66, 65)
NOSE_TIP = 30
CHIN = 8


def lip_gap(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap in pixels of (..., 68, 2) landmark sets (mean of the three inner pairs)."""
    lm = np.asarray(landmarks, np.float64)
    return np.linalg.norm(lm[..., INNER_LOWER, :] - lm[..., INNER_UPPER, :], axis=-1).mean(-1)


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip gap in IODs (0 closed, about 0.5 for a wide-open jaw)."""
    lm = np.asarray(landmarks, np.float64)
    return float(lip_gap(lm) / _iod(lm))


def yaw_ratio(landmarks: np.ndarray) -> float:
    """Signed head yaw from the nose tip's place between the jaw ends: -1 (left) .. 1 (right)."""
    lm = np.asarray(landmarks, np.float64)
    left, right, nose = lm[0, 0], lm[16, 0], lm[NOSE_TIP, 0]
    width = right - left
    if abs(width) < 1e-6:
        return 0.0
    return float(np.clip(2.0 * (nose - left) / width - 1.0, -1.0, 1.0))


def _iod(lm: np.ndarray) -> float:
    return max(float(np.linalg.norm(lm[LEFT_EYE].mean(0) - lm[RIGHT_EYE].mean(0))), 1e-6)


class UShapePlanner:
    """Plans the U-shaped lower-face mask; see the module docstring."""

    name = "u-shape"

    def __init__(self, settings: AnalysisSettings | None = None) -> None:
        self.settings = settings or AnalysisSettings()

    def polygon(self, landmarks_crop: np.ndarray) -> np.ndarray:
        """(N, 2) outline of the U in crop pixels."""
        s = self.settings
        lm = np.asarray(landmarks_crop, np.float64)
        iod = _iod(lm)
        eyes = 0.5 * (lm[LEFT_EYE].mean(0) + lm[RIGHT_EYE].mean(0))
        down = lm[NOSE_TIP] - eyes  # Face's "down" axis, tilting with the head's roll.
        length = np.linalg.norm(down)
        down = down / length if length > 1e-6 else np.array([0.0, 1.0])
        right = np.array([-down[1], down[0]]) * -1.0  # Image-right when upright.
        top = eyes + down * (s.mask_top * length)
        yaw = yaw_ratio(lm)
        opening = mouth_opening(lm)
        chin_margin = (s.mask_chin_margin + s.mask_open_gain * opening) * iod
        centre = lm[list(range(3, 14))].mean(0)
        jaw = lm[JAW].copy()
        out = []
        for i, p in enumerate(jaw):
            side = -1.0 if i < 8 else (1.0 if i > 8 else 0.0)
            # The nose points to the far side (yaw > 0: towards image-right, jaw 9-16 swings out).
            far = max(0.0, yaw * side)
            margin = s.mask_side_margin * iod * (1.0 + s.mask_yaw_gain * 2.0 * far)
            radial = p - centre
            radial /= max(np.linalg.norm(radial), 1e-6)
            q = p + radial * margin
            # Below the mouth the outline drops by the chin margin, fading in along the jaw.
            weight = max(0.0, 1.0 - abs(i - 8) / 5.0)
            q = q + down * chin_margin * weight
            out.append(q)
        pts = np.array(out)
        # Keep the outline below the top line; close it with two points on that line.
        above = (pts - top) @ down
        pts = pts - np.minimum(above, 0.0)[:, None] * down
        first, last = pts[0], pts[-1]
        head = top + right * ((first - top) @ right)
        tail = top + right * ((last - top) @ right)
        return np.vstack([head, pts, tail])

    def plan(self, landmarks_crop: np.ndarray, size: int) -> np.ndarray:
        """(size, size) float32 mask in [0, 1] from landmarks in crop pixels."""
        poly = self.polygon(landmarks_crop)
        mask = np.zeros((size, size), np.uint8)
        fixed = np.round(poly * (1 << SUBPIXEL_BITS)).astype(np.int32)
        cv2.fillPoly(mask, [fixed], 255, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
        out: np.ndarray = mask.astype(np.float32) / 255.0
        sigma = self.settings.mask_soften_px * size / REFERENCE_SIZE
        if sigma > 0:
            out = cv2.GaussianBlur(out, (0, 0), sigma)
        return np.clip(out, 0.0, 1.0)

    def blend_mask(
        self,
        crop_mask: np.ndarray,
        matrix: np.ndarray,
        box: tuple[int, int, int, int],
        feather_px: float,
    ) -> np.ndarray:
        """(h, w) float32 soft mask of the frame region ``box``; see :func:`blend_mask`."""
        return blend_mask(crop_mask, matrix, box, feather_px)


def blend_mask(
    crop_mask: np.ndarray,
    matrix: np.ndarray,
    box: tuple[int, int, int, int],
    feather_px: float,
) -> np.ndarray:
    """Warp M into the frame region ``box`` and feather its edge by ``feather_px`` frame pixels.

    The feather is a Gaussian (sigma = feather_px / 3) of the hard mask. The result is forced to
    0 outside the hard mask dilated by ``feather_px``, and wherever it is below 1/512, so pixels
    out there come back from a blend bit-exactly.
    """
    region = warp_to_frame(np.asarray(crop_mask, np.float32), matrix, box)
    if region.size == 0:
        return region.astype(np.float32)
    hard = (region >= 0.5).astype(np.float32)
    if feather_px <= 0:
        return hard
    soft = cv2.GaussianBlur(hard, (0, 0), feather_px / 3.0)
    radius = int(np.ceil(feather_px))
    # M dilated by a disk of the feather's radius: every pixel within that Euclidean distance of
    # M. A distance transform costs the same at any radius (a dilation with a 55 px disk took
    # 70 ms a frame at 1080p).
    outside = (hard == 0).astype(np.uint8)
    allowed = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) <= radius
    soft[~allowed] = 0.0
    soft[soft < MASK_FLOOR] = 0.0
    # Keep the far border of the box 0 as well: the crop may not cover it.
    soft[[0, -1], :] = 0.0
    soft[:, [0, -1]] = 0.0
    return np.clip(soft, 0.0, 1.0).astype(np.float32)


_DEFAULT = UShapePlanner()


def plan(landmarks_crop: np.ndarray, size: int) -> np.ndarray:
    """The default u-shape mask (default settings) of landmarks in crop pixels; see the class."""
    return _DEFAULT.plan(landmarks_crop, size)
