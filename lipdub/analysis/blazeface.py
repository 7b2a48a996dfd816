"""The default face detector: MediaPipe's BlazeFace, full-range model (Apache-2.0), run by LiteRT.

The model (``weights/mediapipe-face-detection-full-range-v1.tflite``, MediaPipe's
``face_detection_full_range_sparse.tflite`` as shipped in the mediapipe 0.10.21 wheel) takes the
whole image letterboxed onto 192×192 (values in [-1, 1]) and scores 48×48 fixed-size anchors; each
gives a box and six keypoints as offsets from its centre. Overlapping boxes are merged the way
MediaPipe merges them (weighted non-maximum suppression: the cluster's boxes averaged by score).

Why it replaced dlib's HOG detector as the default: one call costs a few milliseconds on a 1080p
frame, where HOG needs ~70 ms on the frame shrunk to 1280 px (most of the analysis's time, see
bench/results.md ``## analysis``), and it finds turned faces HOG misses. It resizes the image
itself, so the face pass hands it the frame (or a region around a followed face) as it is.

Identity descriptors stay dlib's ResNet (public domain): :meth:`BlazeFaceDetector.descriptors`
delegates to it. Same input, same thread count: same boxes (XNNPACK's float kernels are
deterministic).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lipdub.analysis.bundled import bundled_model
from lipdub.analysis.faces import face_descriptors
from lipdub.errors import WeightsError

#: The manifest name of the bundled model, and the kind of every face detector model.
MODEL_NAME = "mediapipe-face-detection-full-range-v1"
MODEL_KIND = "face-detector"
#: A face is reported from this sigmoid score (MediaPipe's default min_detection_confidence).
MIN_SCORE = 0.5
#: Boxes overlapping the best one of a cluster by more than this IoU join it (MediaPipe's 0.3).
MERGE_IOU = 0.3
#: Raw scores are clipped to ±this before the sigmoid (MediaPipe's score_clipping_thresh).
SCORE_CLIP = 100.0
#: The two passes of :meth:`BlazeFaceDetector.detect`: the share of the network's input the
#: image's long side spans.
PASS_FILLS = (1.0, 0.5)
#: The smallest face found reliably, as a share of the image's long side (measured on the test
#: clips shrunk step by step: bench/analysis.py; a face of 1/12 of 192 px is 16 px at the input).
MIN_FACE_SHARE = 1 / 12


class BlazeFaceDetector:
    """BlazeFace boxes on any RGB image, dlib ResNet descriptors.

    Arguments:
        model: the .tflite file's bytes (already checked against the manifest).
        sha256: their SHA-256, part of :attr:`name` so the analysis cache tells models apart.
        config: the JSON record's ``config`` (input side, anchor grid, output tensor names).
        threads: CPU threads the runtime uses.
    """

    licence = "Apache-2.0 (MediaPipe BlazeFace model) + public domain (dlib ResNet descriptor)"
    #: The image is shrunk by the detector itself: the face pass gives it frames as they are.
    scales_itself = True

    def __init__(self, model: bytes, sha256: str, config: dict[str, Any], threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        got = hashlib.sha256(model).hexdigest()
        if got != sha256:
            raise WeightsError(f"blazeface: model bytes hash to {got[:12]}…, not {sha256[:12]}…")
        self.name = "blazeface"
        self.side = int(config["input"][0])
        self.window_px = max(1, round(self.side * MIN_FACE_SHARE))
        self._net = Interpreter(model_content=model, num_threads=int(threads))
        self._net.allocate_tensors()
        self._input = self._net.get_input_details()[0]["index"]
        by_name = {d["name"]: d["index"] for d in self._net.get_output_details()}
        self._boxes = by_name[config["outputs"]["boxes"]]
        self._scores = by_name[config["outputs"]["scores"]]
        grid = int(config["anchor_grid"])
        cells = (np.arange(grid, dtype=np.float32) + 0.5) / grid
        gx, gy = np.meshgrid(cells, cells)  # Row-major: anchor k = (row k // grid, col k % grid).
        self._anchors = np.stack([gx.ravel(), gy.ravel()], axis=1)

    def smallest_face(self, width: int, height: int) -> float:
        """Side (image pixels) of the smallest face found in a ``width`` × ``height`` image."""
        return max(width, height) * MIN_FACE_SHARE

    def detect(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Faces in RGB ``image`` as ``(box x0, y0, x1, y1 in its pixels, score)``, best first.

        Two passes, merged: the image filling the network's input, and the image at half that
        size (a margin all round). The full-range model misses faces that fill the whole
        picture (tight crops, 160-224 px talking-head clips: 2 of 14 frames found on one), and
        finds them all with the margin; the first pass keeps the small faces of wide shots.
        """
        h, w = image.shape[:2]
        if h < 2 or w < 2:
            return []
        # Shrunk once to the first pass's size: the second shrinks that (a 1080p INTER_AREA
        # resize costs more than the network).
        scale = min(1.0, self.side / max(h, w))
        small = image
        if scale < 1:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_AREA)
        passes = [self._pass(small, fill) for fill in PASS_FILLS]
        boxes = np.vstack([b for b, _ in passes]) / scale
        scores = np.concatenate([s for _, s in passes])
        merged = merge_overlapping(boxes, scores)
        out = []
        for box, score in merged:
            box[[0, 2]] = np.clip(box[[0, 2]], 0, w)
            box[[1, 3]] = np.clip(box[[1, 3]], 0, h)
            if box[2] - box[0] >= 1 and box[3] - box[1] >= 1:
                out.append((box, score))
        return out

    def _pass(self, image: np.ndarray, fill: float) -> tuple[np.ndarray, np.ndarray]:
        """(K, 4) boxes in image pixels and (K,) scores of the anchors over MIN_SCORE, the image
        letterboxed so its long side spans ``fill`` of the network's input."""
        h, w = image.shape[:2]
        scale = self.side * fill / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(image, size, interpolation=interp)
        pad_x, pad_y = (self.side - size[0]) // 2, (self.side - size[1]) // 2
        tensor = np.zeros((1, self.side, self.side, 3), np.float32)
        view = tensor[0, pad_y : pad_y + size[1], pad_x : pad_x + size[0]]
        np.multiply(small, 2.0 / 255.0, out=view, casting="unsafe")
        view -= 1.0
        self._net.set_tensor(self._input, tensor)
        self._net.invoke()
        raw = self._net.get_tensor(self._boxes)[0]
        logits = np.clip(self._net.get_tensor(self._scores)[0, :, 0], -SCORE_CLIP, SCORE_CLIP)
        scores = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        keep = np.flatnonzero(scores >= MIN_SCORE)
        centre = raw[keep, :2] / self.side + self._anchors[keep]
        half = raw[keep, 2:4] / self.side / 2
        boxes = np.hstack([centre - half, centre + half]).astype(np.float64) * self.side
        boxes = (boxes - [pad_x, pad_y, pad_x, pad_y]) / scale
        return boxes.reshape(-1, 4), scores[keep]

    def descriptors(self, image: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 128) float32 dlib ResNet descriptors of the faces with these landmarks."""
        return face_descriptors(image, landmarks)

    def landmarks(self, image: np.ndarray, boxes: Sequence[np.ndarray]) -> np.ndarray:
        """Not this stage's work: the ``landmarker`` stage fits the points."""
        raise NotImplementedError("blazeface finds faces; the landmarker stage fits their points")


def merge_overlapping(boxes: np.ndarray, scores: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted non-maximum suppression: best box first, every box overlapping it by
    more than MERGE_IOU joins its cluster, the cluster's box is the score-weighted mean of its
    boxes and its score the best one's. Returns ``(box, score)`` per cluster, best first."""
    if len(scores) == 0:
        return []
    order = np.argsort(-scores, kind="stable")
    left = list(order)
    out: list[tuple[np.ndarray, float]] = []
    while left:
        top = boxes[left[0]]
        ious = _iou_many(top, boxes[left])
        members = [k for k, v in zip(left, ious, strict=True) if v > MERGE_IOU]
        members = members or [left[0]]
        weights = scores[members][:, None]
        out.append(((boxes[members] * weights).sum(axis=0) / weights.sum(), float(scores[left[0]])))
        taken = set(members)
        left = [k for k in left if k not in taken]
    return out


def _iou_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area + areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def load_blazeface(
    threads: int = 1, manifest: Path | None = None, model: str = MODEL_NAME
) -> BlazeFaceDetector:
    """The BlazeFace detector with the bundled ``model`` (a ``face-detector`` of the manifest),
    its file verified against ``manifest`` (default weights/manifest.toml) first.

    Raises:
        WeightsError: the file is missing, or its SHA-256 or record does not match.
    """
    data, sha, config = bundled_model(model, MODEL_KIND, "face detector model", manifest)
    return BlazeFaceDetector(data, sha, config, threads)
