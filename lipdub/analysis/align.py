"""Eye-based alignment of a face to the generator's square crop, and the way back.

StyleSync aligns faces by the eyes and crops them to 256x256 (128x128 for the CPU config: the
same template at another size). The similarity transform (rotation, uniform scale, translation)
maps the two eye centres exactly onto :data:`TEMPLATE`. The eyes sit high in the crop so the
lower face, down past a wide-open chin, fits inside with the mask's margin: measured on the
shared clips, dlib's chin point lies 1.85-2.3 inter-ocular distances (IOD) below the eyes, a
wide-open jaw drops it another ~0.35 IOD and the mask reaches ~0.35 IOD further. With the IOD at
0.22 of the side and the eyes at 0.31, that worst case (3.0 IOD) ends at 0.97 of the crop.

Matrices are (2, 3) float64 mapping frame pixels to crop pixels (OpenCV's convention, pixel
centres at integer coordinates). Shrinking is antialiased: the region is first reduced with
``cv2.INTER_AREA`` (a box filter over every source pixel), then warped with bilinear sampling.
"""

from __future__ import annotations

import cv2
import numpy as np

from lipdub.analysis.records import LEFT_EYE, RIGHT_EYE

#: Eye centres in the crop, as fractions of its side: (image-left eye, image-right eye).
TEMPLATE = np.array([[0.39, 0.31], [0.61, 0.31]], np.float64)
#: Below this scale a warp is done in two steps (INTER_AREA reduction, then bilinear).
ANTIALIAS_BELOW = 0.95


def eye_centres(landmarks68: np.ndarray) -> np.ndarray:
    """(2, 2) centres of the image-left and image-right eyes from 68 landmarks."""
    lm = np.asarray(landmarks68, np.float64)
    return np.stack([lm[LEFT_EYE].mean(axis=0), lm[RIGHT_EYE].mean(axis=0)])


def similarity_to_template(landmarks68: np.ndarray, size: int) -> np.ndarray:
    """(2, 3) frame-to-crop similarity putting the eyes on :data:`TEMPLATE` in a ``size`` crop."""
    src = eye_centres(landmarks68)
    dst = TEMPLATE * size
    sv, dv = src[1] - src[0], dst[1] - dst[0]
    # Complex-number form: z_dst = a * z_src + t with a = dv / sv.
    a = complex(dv[0], dv[1]) / complex(sv[0], sv[1])
    rot = np.array([[a.real, -a.imag], [a.imag, a.real]])
    t = dst[0] - rot @ src[0]
    return np.hstack([rot, t[:, None]])


def invert(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (2, 3) affine matrix."""
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def scale_of(matrix: np.ndarray) -> float:
    """Uniform scale of a similarity matrix (crop pixels per frame pixel)."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix)[:, :2]))))


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) matrix to (..., 2) points."""
    m = np.asarray(matrix, np.float64)
    p = np.asarray(points, np.float64)
    return p @ m[:, :2].T + m[:, 2]


def paste_region(
    matrix: np.ndarray, size: int, frame_shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """Frame-space box ``(x0, y0, x1, y1)`` (clipped, exclusive ends) that a crop covers."""
    corners = np.array([[0, 0], [size - 1, 0], [0, size - 1], [size - 1, size - 1]], np.float64)
    pts = transform_points(invert(matrix), corners)
    h, w = frame_shape[:2]
    x0 = int(np.clip(np.floor(pts[:, 0].min()) - 1, 0, w))
    y0 = int(np.clip(np.floor(pts[:, 1].min()) - 1, 0, h))
    x1 = int(np.clip(np.ceil(pts[:, 0].max()) + 2, 0, w))
    y1 = int(np.clip(np.ceil(pts[:, 1].max()) + 2, 0, h))
    return x0, y0, x1, y1


def warp_to_crop(frame: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Sample the aligned (size, size, C) crop from ``frame``, antialiased when shrinking."""
    scale = scale_of(matrix)
    if scale < ANTIALIAS_BELOW:
        x0, y0, x1, y1 = paste_region(matrix, size, frame.shape)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            region = frame[y0:y1, x0:x1]
            rw, rh = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
            small = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA)
            sx, sy = rw / (x1 - x0), rh / (y1 - y0)
            m = _compose_xy(matrix, sx, sy, (x0, y0))
            return cv2.warpAffine(
                small, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
    return cv2.warpAffine(
        frame,
        np.asarray(matrix, np.float64),
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _compose_xy(
    matrix: np.ndarray, sx: float, sy: float, offset: tuple[float, float]
) -> np.ndarray:
    """Matrix from a region (shifted by ``offset``, resized by ``sx``, ``sy``) to the crop."""
    m = np.asarray(matrix, np.float64)
    # A resized pixel p' came from p = (p' + 0.5) / s - 0.5 + offset.
    back = np.array(
        [[1 / sx, 0, 0.5 / sx - 0.5 + offset[0]], [0, 1 / sy, 0.5 / sy - 0.5 + offset[1]]]
    )
    return np.hstack([m[:, :2] @ back[:, :2], (m[:, :2] @ back[:, 2] + m[:, 2])[:, None]])


def warp_to_frame(
    crop: np.ndarray, matrix: np.ndarray, box: tuple[int, int, int, int]
) -> np.ndarray:
    """Inverse-warp a crop into the frame region ``box``: an (y1-y0, x1-x0, ...) array.

    Pixels of the box that the crop does not cover are 0 (use the blend mask, which is 0 there).
    When the crop is larger than the face in the frame it is first reduced with INTER_AREA.
    """
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    if w <= 0 or h <= 0:
        return np.zeros((max(h, 0), max(w, 0), *crop.shape[2:]), crop.dtype)
    m = np.asarray(matrix, np.float64).copy()
    scale = scale_of(m)
    src = crop
    if scale > 1 / ANTIALIAS_BELOW:
        side = max(1, round(crop.shape[1] / scale))
        src = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA)
        s = side / crop.shape[1]
        # Frame -> reduced crop: p'' = (p' + 0.5) * s - 0.5.
        m = np.vstack([m, [0, 0, 1]])
        m = (np.array([[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5], [0, 0, 1]]) @ m)[:2]
    # Box-local -> crop: shift by the box origin.
    m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
    return cv2.warpAffine(
        src,
        m,
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
