"""The default landmarker: MediaPipe's Face Mesh with attention (Apache-2.0), run by LiteRT.

The model (``weights/mediapipe-face-mesh-attention-v1.tflite``, MediaPipe's
``face_landmark_with_attention.tflite`` as shipped in the mediapipe 0.10.21 wheel) maps a 192×192
RGB crop in [0, 1] around one face to 468 points (x, y in crop pixels, z), a face-presence logit,
and 80 lip points refined on a crop of its own features around the mouth. lipdub runs it through
``ai-edge-litert`` (Google's maintained TFLite runtime) with the model's three custom operations
in numpy (:mod:`lipdub.analysis.mesh_graph`), and never imports mediapipe. The plain mesh
(``mediapipe-face-mesh-v1``, no refinement) runs the same way; its inner lips do not meet on a
closed mouth (bench/results.md), so it is not the default.

A new face takes two passes: the first crop is the detector's (or the carried) box, enlarged by
:data:`BOX_SCALE`, and runs only the model's first segment (the coarse mesh); the second is turned
so the eye corners lie level and framed on the first pass's points (:data:`MESH_SCALE`), the crop
the model was trained on, and runs the whole model. With ``follow`` (an option, off by default) a
face followed from the previous frame takes one pass, on the crop the previous frame's points
framed, as MediaPipe's own graph tracks a face between detections. The lip points replace the
mesh's (MediaPipe's refinement, :data:`lipdub.analysis.mesh68.LIP_REFINEMENT`); the 468 points are
read as dlib's 68 by :mod:`lipdub.analysis.mesh68`, so every consumer of the 68-point scheme keeps
working; the inner lips come from the mesh's inner-lip contour.

The model file is checked against ``weights/manifest.toml`` (SHA-256, and the JSON record beside
it) before the runtime sees its bytes: a tampered file is refused with a ``WeightsError``.
Same input, same thread count: same points (XNNPACK's float kernels are deterministic).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from lipdub.analysis.bundled import bundled_model
from lipdub.analysis.mesh68 import LIP_REFINEMENT, MESH_EYE_CORNERS, MESH_TO_68
from lipdub.analysis.mesh_graph import SplitGraph
from lipdub.errors import WeightsError

log = logging.getLogger(__name__)

#: The manifest name of the default model, and the kind of every face landmark model.
MODEL_NAME = "mediapipe-face-mesh-attention-v1"
MODEL_KIND = "face-landmarker"
#: Side of the model's square input (pixels).
INPUT_PX = 192
#: The first crop's side, in sides of the detector's box: a dlib HOG box spans brows to chin, a
#: mesh crop the whole head with a margin (MediaPipe enlarges its BlazeFace box by 1.5).
BOX_SCALE = 1.6
#: The crop's revision, in the landmarker's name: the points of the crop before area averaging
#: (2026-12-08) were other points, so cached analyses made with it are not reused.
CROP = "+area"
#: The second crop's side, in the long side of the first pass's points seen level (MediaPipe's
#: face_landmark_landmarks_to_roi uses 1.5).
MESH_SCALE = 1.5
#: A face followed on the previous frame's crop whose presence score falls below this is fitted
#: again from its box (the face moved too far for the crop, or was covered).
FOLLOW_MIN_SCORE = 0.5

#: A crop: centre (x, y frame pixels), side (pixels), roll angle (radians).
Roi = tuple[np.ndarray, float, float]


class MeshLandmarker:
    """MediaPipe Face Mesh on each face box; 68 dlib-order points and a presence score per face.

    Arguments:
        model: the .tflite file's bytes (already checked against the manifest).
        sha256: their SHA-256, part of :attr:`name` so the analysis cache tells models apart.
        outputs: the model's output tensors by role: "landmarks", "face_flag" and, for a model
            that refines the lips, "lips" (its JSON record's ``config.outputs``).
        threads: CPU threads the runtime uses (1 or 2 is plenty for a 192² network).
        follow: accept the previous frame's crops (:meth:`landmarks`' ``rois``), one pass per
            followed face; False (the default): two passes on every face. Following saves ~7%
            of the analysis but moved the points ~0.006 IOD and cost lip detail in renders.
    """

    licence = "Apache-2.0 (MediaPipe Face Mesh model)"

    def __init__(
        self,
        model: bytes,
        sha256: str,
        outputs: Mapping[str, str],
        threads: int = 1,
        follow: bool = False,
    ) -> None:
        got = hashlib.sha256(model).hexdigest()
        if got != sha256:
            raise WeightsError(f"face mesh: model bytes hash to {got[:12]}…, not {sha256[:12]}…")
        #: Fit a followed face in one pass on its previous crop (the face pass hands it back).
        self.follow = bool(follow)
        # "+follow": the points differ from two passes' (by ~0.006 IOD), so the cache keys do;
        # CROP likewise keeps analyses made from another crop out of the cache.
        self.name = f"mediapipe-mesh@{sha256[:12]}{CROP}" + ("+follow" if self.follow else "")
        self.threads = int(threads)
        self._graph = SplitGraph(model, self.threads)
        self._outputs = dict(outputs)
        #: Presence score (0..1) of each face of the last :meth:`landmarks` call.
        self.scores = np.zeros(0, np.float32)
        #: The crop each face of the last call frames for the next frame (centre, side, angle).
        self.rois: list[Roi] = []

    def landmarks(
        self,
        image: np.ndarray,
        boxes: Sequence[np.ndarray],
        rois: Sequence[Roi | None] | None = None,
    ) -> np.ndarray:
        """(N, 68, 2) float32 dlib-order points of the faces in ``boxes`` (frame pixels).

        ``rois``: per face, the crop the previous frame's mesh framed (:attr:`rois` of the call
        before), for a face followed from it; None where the face is new. A followed face is
        fitted in one pass on that crop, as MediaPipe tracks a face between detections; if its
        presence score falls below :data:`FOLLOW_MIN_SCORE` it is fitted again from its box.
        """
        mesh, scores = self.mesh(image, boxes, rois)
        self.scores = scores
        return mesh[:, MESH_TO_68, :2].astype(np.float32)

    def mesh(
        self,
        image: np.ndarray,
        boxes: Sequence[np.ndarray],
        rois: Sequence[Roi | None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N, 468, 3) float32 mesh points (x, y in frame pixels; z in the same scale) and
        (N,) presence scores (see the module docstring and :meth:`landmarks`). Sets
        :attr:`rois` (with ``follow``), the crop each face's points frame for the next frame."""
        out = np.zeros((len(boxes), 468, 3), np.float32)
        scores = np.zeros(len(boxes), np.float32)
        for i, box in enumerate(boxes):
            roi = rois[i] if rois is not None else None
            if roi is not None:
                out[i], scores[i] = self._run(image, *roi, coarse=False)
            if roi is None or scores[i] < FOLLOW_MIN_SCORE:
                b = np.asarray(box, np.float64)
                centre = (b[:2] + b[2:4]) / 2
                side = float(max(b[2] - b[0], b[3] - b[1])) * BOX_SCALE
                first, _ = self._run(image, centre, side, 0.0, coarse=True)
                out[i], scores[i] = self._run(image, *roi_from_points(first[:, :2]), coarse=False)
        if self.follow:  # Only a following landmarker's crops are handed back.
            self.rois = [roi_from_points(points[:, :2]) for points in out]
        return out, scores

    def _run(
        self, image: np.ndarray, centre: np.ndarray, side: float, angle: float, coarse: bool
    ) -> tuple[np.ndarray, float]:
        """The model on the square crop of ``side`` px turned by ``angle`` (radians) about
        ``centre``; the points come back in frame pixels. ``coarse``: the mesh before any
        refinement (the model's first segment only)."""
        crop = model_crop(image, centre, side, angle)
        got = self._graph.run(crop[None].astype(np.float32) / 255.0, first_segment_only=coarse)
        pts = got[self._outputs["landmarks"]].reshape(468, 3).astype(np.float64)
        lips = self._outputs.get("lips")
        if lips is not None and not coarse:  # MediaPipe's refinement: its lips replace the mesh's.
            pts[LIP_REFINEMENT, :2] = got[lips].reshape(len(LIP_REFINEMENT), 2)
        logit = float(got[self._outputs["face_flag"]].reshape(-1)[0])
        back = cv2.invertAffineTransform(crop_matrix(centre, side, angle))
        xy = pts[:, :2] @ back[:, :2].T + back[:, 2]
        z = pts[:, 2:] * side / INPUT_PX
        return np.hstack([xy, z]).astype(np.float32), float(1 / (1 + np.exp(-logit)))


def model_crop(image: np.ndarray, centre: np.ndarray, side: float, angle: float) -> np.ndarray:
    """(INPUT_PX, INPUT_PX, 3) the model's input: the square of ``side`` px about ``centre``
    turned by ``angle`` (:func:`crop_matrix`), black outside the frame.

    A face at least twice the input's size is first halved (the mean of each 2 x 2 block,
    around the turned square only) until what is left is under 2x, then warped bilinearly:
    ``warpAffine`` has no area mode (it takes INTER_AREA as bilinear), and bilinear sampling of
    a 1080p face at a third of its size aliases its edges, which moved the lips' points from
    frame to frame. Halving takes OpenCV's fast block mean (0.3-0.5 ms a 1080p crop); one
    fractional area resize took 4-5 ms, a 3 x 3 block mean 2-3 ms.
    """
    to_crop = crop_matrix(centre, side, angle)
    k = 1
    while side / INPUT_PX >= 2 * k:
        k *= 2
    if k >= 2:
        h, w = image.shape[:2]
        # The turned square's half-extent along x and y, and two blocks for the bilinear taps.
        reach = 0.5 * side * (abs(np.cos(angle)) + abs(np.sin(angle))) + 2 * k
        x0, y0 = max(0, int(centre[0] - reach)), max(0, int(centre[1] - reach))
        x1, y1 = min(w, int(np.ceil(centre[0] + reach))), min(h, int(np.ceil(centre[1] + reach)))
        x1, y1 = x0 + (x1 - x0) // k * k, y0 + (y1 - y0) // k * k
        if x1 > x0 and y1 > y0:
            small = image[y0:y1, x0:x1]
            for _ in range(k.bit_length() - 1):
                half_size = (small.shape[1] // 2, small.shape[0] // 2)
                small = cv2.resize(small, half_size, interpolation=cv2.INTER_AREA)
            # Block (u, v) of the small image is centred on frame pixel
            # (x0 + k·u + (k - 1) / 2, y0 + k·v + (k - 1) / 2).
            half = (k - 1) / 2
            to_frame = np.array([[k, 0.0, x0 + half], [0.0, k, y0 + half], [0.0, 0.0, 1.0]])
            to_crop = to_crop @ to_frame
            image = small
    return cv2.warpAffine(
        image, to_crop, (INPUT_PX, INPUT_PX), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def crop_matrix(centre: np.ndarray, side: float, angle: float) -> np.ndarray:
    """(2, 3) affine taking frame pixels to the model's input: the square of ``side`` px about
    ``centre``, turned by ``angle`` (radians, the face's roll), onto [0, INPUT_PX)²."""
    s = INPUT_PX / max(side, 1.0)
    c, n = np.cos(angle) * s, np.sin(angle) * s
    rot = np.array([[c, n], [-n, c]])
    offset = INPUT_PX / 2 - rot @ np.asarray(centre, np.float64)
    return np.hstack([rot, offset[:, None]])


def roi_from_points(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(centre, side, roll angle) of the crop framing mesh ``points`` (468, 2) level:
    the roll from the outer eye corners, the box of the points seen level, enlarged MESH_SCALE."""
    right, left = points[MESH_EYE_CORNERS[0]], points[MESH_EYE_CORNERS[1]]
    angle = float(np.arctan2(left[1] - right[1], left[0] - right[0]))
    c, s = np.cos(angle), np.sin(angle)
    level = points @ np.array([[c, -s], [s, c]])  # Rotate by -angle: the eyes level.
    lo, hi = level.min(axis=0), level.max(axis=0)
    mid = (lo + hi) / 2
    centre = np.array([mid[0] * c - mid[1] * s, mid[0] * s + mid[1] * c])
    return centre, float((hi - lo).max()) * MESH_SCALE, angle


def load_mesh_landmarker(
    threads: int = 1, manifest: Path | None = None, model: str = MODEL_NAME, follow: bool = False
) -> MeshLandmarker:
    """The MediaPipe landmarker with the bundled ``model`` (a ``face-landmarker`` of the
    manifest), its file verified against ``manifest`` (default weights/manifest.toml) first.

    Raises:
        WeightsError: the file is missing, or its SHA-256 or record does not match.
    """
    data, sha, config = bundled_model(model, MODEL_KIND, "face landmark model", manifest)
    return MeshLandmarker(data, sha, config["outputs"], threads, follow)
