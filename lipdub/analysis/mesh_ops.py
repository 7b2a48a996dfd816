"""MediaPipe's three custom TFLite operations, in numpy, for the face mesh's lip refinement.

MediaPipe's attention face mesh (``face_landmark_with_attention.tflite``) crops its own feature
map around the lips and eyes and refines those points there. The crop and its inverse are custom
operations that a plain TFLite runtime (LiteRT) does not have; :mod:`lipdub.analysis.mesh_graph`
runs the standard parts in LiteRT and these in between. Their arithmetic follows MediaPipe's
kernels (``mediapipe/util/tflite/operations/``: ``landmarks_to_transform_matrix.cc`` v2,
``transform_tensor_bilinear.cc`` v2, ``transform_landmarks.cc`` v2, Apache-2.0): a 4×4 matrix
maps a crop's pixel (x, y, 0, 1) to the feature map's, from a subset of the coarse mesh.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _affine4(linear: np.ndarray, shift: Sequence[float]) -> np.ndarray:
    """4×4 matrix acting on (x, y) with ``linear`` (2×2) and ``shift``; identity on z, w."""
    out = np.eye(4)
    out[:2, :2], out[:2, 3] = linear, shift
    return out


def _rotation(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def landmarks_to_transform_matrix(
    landmarks: np.ndarray,
    left_rotation_idx: int,
    right_rotation_idx: int,
    subset_idxs: Sequence[Sequence[int]],
    scale_x: float,
    scale_y: float,
    output_width: int,
    output_height: int,
    target_rotation_radians: float = 0.0,
) -> np.ndarray:
    """(1, 4, 4) matrix from a crop of ``output_width`` × ``output_height`` to the landmarks'
    frame: the subset's box seen level (roll from the two rotation points), its centre, its size
    times ``scale_*``. ``landmarks`` (1, N, 3)."""
    p = np.asarray(landmarks, np.float64).reshape(-1, 3)[:, :2]
    left, right = p[left_rotation_idx], p[right_rotation_idx]
    roll = target_rotation_radians - np.arctan2(right[1] - left[1], right[0] - left[0])
    level = p[np.asarray(subset_idxs, np.intp).reshape(-1)] @ _rotation(roll).T
    lo, hi = level.min(axis=0), level.max(axis=0)
    width, height = hi - lo
    centre = _rotation(-roll) @ ((lo + hi) / 2)
    t = _affine4(np.eye(2), centre)
    t = t @ _affine4(_rotation(-roll), (0.0, 0.0))
    t = t @ _affine4(np.diag([scale_x * width / output_width, scale_y * height / output_height]),
                     (0.0, 0.0))  # fmt: skip
    t = t @ _affine4(np.eye(2), (-output_width / 2, -output_height / 2))
    return t.astype(np.float32)[None]


def transform_tensor_bilinear(
    features: np.ndarray, matrix: np.ndarray, output_width: int, output_height: int
) -> np.ndarray:
    """(1, output_height, output_width, C): ``features`` (1, H, W, C) sampled bilinearly where
    ``matrix`` sends each output pixel (centre-aligned); 0 outside the map."""
    f = np.asarray(features, np.float32)[0]
    h, w = f.shape[:2]
    m = np.asarray(matrix, np.float64).reshape(4, 4)
    xt, yt = m[0].copy(), m[1].copy()
    # Pixel centres: T -> S·T·A with A = +0.5, S = -0.5 (MediaPipe's "align corners" step).
    xt[3] += xt[0] * 0.5 + xt[1] * 0.5 - 0.5
    yt[3] += yt[0] * 0.5 + yt[1] * 0.5 - 0.5
    oy, ox = np.mgrid[0:output_height, 0:output_width].astype(np.float64)
    tx, ty = xt[0] * ox + xt[1] * oy + xt[3], yt[0] * ox + yt[1] * oy + yt[3]
    outside = (tx < 0) | (tx > w - 1) | (ty < 0) | (ty > h - 1)
    x0, y0 = np.floor(tx).astype(np.intp), np.floor(ty).astype(np.intp)
    fx, fy = (tx - x0)[..., None], (ty - y0)[..., None]

    def at(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        inside = (yy >= 0) & (xx >= 0) & (yy < h) & (xx < w)
        return np.where(inside[..., None], f[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0.0)

    upper = (1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1)
    lower = (1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1)
    out = fy * lower + (1 - fy) * upper
    out[outside] = 0.0
    return out[None].astype(np.float32)


def transform_landmarks(landmarks: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``landmarks`` (1, N, 2), crop pixels, mapped by ``matrix`` (1, 4, 4) to the map's."""
    m = np.asarray(matrix, np.float64).reshape(4, 4)
    p = np.asarray(landmarks, np.float64).reshape(-1, 2)
    out = p @ m[:2, :2].T + m[:2, 3]
    return out.reshape(np.shape(landmarks)).astype(np.float32)


#: The custom operation's name in the model file -> its implementation.
CUSTOM_OPS: dict[str, Callable[..., np.ndarray]] = {
    "Landmarks2TransformMatrix": landmarks_to_transform_matrix,
    "TransformTensorBilinear": transform_tensor_bilinear,
    "TransformLandmarks": transform_landmarks,
}
