"""Linking faces across frames into tracks: box overlap plus colour appearance ("iou-appearance").

Each frame's faces are matched to the live tracks by the Hungarian algorithm on a cost that
mixes the overlap (IoU) of the face's box with the track's predicted box (constant velocity) and
the similarity of their colour histograms (Bhattacharyya coefficient), in the manner of SORT /
DeepSORT with a cheap appearance cue. A track that misses up to ``max_gap`` frames is continued
and the gap is bridged by linear interpolation; a cut ends every track. Finished tracks are
smoothed with the One Euro filter (:mod:`lipdub.analysis.smoothing`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from lipdub.analysis.records import FaceObservation, FaceTrack
from lipdub.analysis.settings import AnalysisSettings
from lipdub.analysis.smoothing import smooth_landmarks

#: Hue x saturation bins of the appearance histogram (coarse: robust to lighting and blur).
HIST_BINS = (16, 8)
#: After a gap, a face may re-join a track if its centre is within this many box sides.
REJOIN_DISTANCE = 0.5
#: ...and its appearance is at least this similar (Bhattacharyya coefficient, 1 = identical).
REJOIN_APPEARANCE = 0.6
#: Weight of the newest appearance in a track's running histogram.
APPEARANCE_MOMENTUM = 0.1


def appearance(frame: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Normalised hue-saturation histogram of the inner face box (RGB frame), flattened."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = box
    cx, cy, s = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * 0.35  # Inner face: skin, not background.
    xa, xb = int(max(0, cx - s)), int(min(w, cx + s))
    ya, yb = int(max(0, cy - s)), int(min(h, cy + s))
    if xb - xa < 2 or yb - ya < 2:
        return np.full(HIST_BINS[0] * HIST_BINS[1], 1.0 / (HIST_BINS[0] * HIST_BINS[1]), np.float32)
    hsv = cv2.cvtColor(np.ascontiguousarray(frame[ya:yb, xa:xb]), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(HIST_BINS), [0, 180, 0, 256]).ravel()
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x0, y0, x1, y1 boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _similarity(h1: np.ndarray | None, h2: np.ndarray | None) -> float:
    if h1 is None or h2 is None:
        return 0.5
    return float(np.sum(np.sqrt(np.maximum(h1, 0) * np.maximum(h2, 0))))


@dataclass
class _Live:
    track_id: int
    obs: dict[int, FaceObservation] = field(default_factory=dict)
    last_frame: int = -1
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    hist: np.ndarray | None = None

    def predict(self, frame: int) -> np.ndarray:
        return self.obs[self.last_frame].box + self.velocity * (frame - self.last_frame)

    def add(self, frame: int, face: FaceObservation) -> None:
        if self.last_frame >= 0:
            step = (face.box - self.obs[self.last_frame].box) / max(frame - self.last_frame, 1)
            self.velocity = 0.5 * self.velocity + 0.5 * step
        self.obs[frame] = face
        self.last_frame = frame
        if face.appearance is not None:
            self.hist = (
                face.appearance
                if self.hist is None
                else (1 - APPEARANCE_MOMENTUM) * self.hist + APPEARANCE_MOMENTUM * face.appearance
            )


class IouAppearanceTracker:
    """Tracks faces by box overlap and colour appearance; see the module docstring."""

    name = "iou-appearance"

    def __init__(self, settings: AnalysisSettings | None = None) -> None:
        self.settings = settings or AnalysisSettings()
        self._live: list[_Live] = []
        self._done: list[_Live] = []
        self._next_id = 0

    def update(self, frame: int, faces: Sequence[FaceObservation], new_shot: bool) -> list[int]:
        """Link the faces of ``frame`` to tracks; returns a track id per face."""
        s = self.settings
        if new_shot:
            self._done.extend(self._live)
            self._live = []
        still: list[_Live] = []
        for t in self._live:
            (still if frame - t.last_frame <= s.max_gap + 1 else self._done).append(t)
        self._live = still
        ids = [-1] * len(faces)
        if self._live and faces:
            cost = np.full((len(self._live), len(faces)), np.inf)
            for i, t in enumerate(self._live):
                pred = t.predict(frame)
                side = max(pred[2] - pred[0], 1.0)
                for j, f in enumerate(faces):
                    overlap = iou(pred, f.box)
                    app = _similarity(t.hist, f.appearance)
                    centre = np.linalg.norm((pred[:2] + pred[2:]) / 2 - (f.box[:2] + f.box[2:]) / 2)
                    near = centre < REJOIN_DISTANCE * side and app >= REJOIN_APPEARANCE
                    if overlap >= s.iou_threshold or (frame - t.last_frame > 1 and near):
                        w = s.appearance_weight
                        cost[i, j] = 1.0 - ((1 - w) * overlap + w * app)
            finite = np.where(np.isfinite(cost), cost, 1e6)
            rows, cols = linear_sum_assignment(finite)
            for i, j in zip(rows, cols, strict=True):
                if np.isfinite(cost[i, j]):
                    self._live[i].add(frame, faces[j])
                    ids[j] = self._live[i].track_id
        for j, f in enumerate(faces):
            if ids[j] < 0:
                t = _Live(self._next_id)
                self._next_id += 1
                t.add(frame, f)
                self._live.append(t)
                ids[j] = t.track_id
        return ids

    def finish(self, fps: float) -> tuple[list[FaceTrack], list[str]]:
        """Close all tracks: trim unconfirmed tails, bridge gaps, smooth, renumber."""
        s = self.settings
        raw = self._done + self._live
        self._done, self._live, self._next_id = [], [], 0
        tracks: list[FaceTrack] = []
        warnings: list[str] = []
        for t in sorted(raw, key=lambda t: min(t.obs)):
            frames = _trim_unconfirmed_tail(t.obs)
            hits = sum(t.obs[f].detected for f in frames)
            if frames and (len(frames) < s.min_track_frames or hits < s.min_track_detections):
                warnings.append(
                    f"a face on shot frames {frames[0]}-{frames[-1]} found {hits} time(s) by the "
                    f"detector was dropped as unreliable (min_track_frames="
                    f"{s.min_track_frames}, min_track_detections={s.min_track_detections})"
                )
            if len(frames) < s.min_track_frames or hits < s.min_track_detections:
                continue
            score = float(np.median([t.obs[f].score for f in frames if t.obs[f].detected]))
            if score < s.min_track_score:
                warnings.append(
                    f"a face-like region on shot frames {frames[0]}-{frames[-1]} was dropped as a "
                    f"likely false detection (median detector score {score:.2f} < "
                    f"min_track_score={s.min_track_score})"
                )
                continue
            tracks.append(_build(len(tracks), frames, t.obs, fps, s))
        return tracks, warnings


def _trim_unconfirmed_tail(obs: dict[int, FaceObservation]) -> list[int]:
    """Frames of a track, without the carried frames after a detector pass failed to confirm it.

    Between detector passes a face is carried by its landmarks; when the detector then stops
    finding it, the carried frames from the first unconfirmed pass on are not trusted.
    """
    frames = sorted(obs)
    last_seen = max((f for f in frames if obs[f].detected), default=frames[0] - 1)
    for f in frames:
        if f > last_seen and obs[f].missed:
            return [g for g in frames if g < f]
    return frames


def _build(
    track_id: int,
    frames: list[int],
    obs: dict[int, FaceObservation],
    fps: float,
    s: AnalysisSettings,
) -> FaceTrack:
    """Bridge gaps by linear interpolation, smooth the landmarks and pack the arrays."""
    known = np.asarray(frames)
    full = np.arange(known[0], known[-1] + 1)
    lm_known = np.stack([obs[f].landmarks for f in frames]).astype(np.float64)
    box_known = np.stack([obs[f].box for f in frames]).astype(np.float64)
    lm = _interp(full, known, lm_known.reshape(len(known), -1)).reshape(len(full), 68, 2)
    boxes = _interp(full, known, box_known)
    detected = np.isin(full, known)
    smooth = smooth_landmarks(
        lm, fps, s.smooth_min_cutoff, s.smooth_beta, s.smooth_d_cutoff, s.smooth_mouth_min_cutoff
    )
    descriptors = [d for d in (obs[f].descriptor for f in frames) if d is not None]
    if len(descriptors) > s.max_descriptors:  # Keep them spread over the whole track.
        picks = np.linspace(0, len(descriptors) - 1, s.max_descriptors).round().astype(int)
        descriptors = [descriptors[k] for k in picks]
    if not descriptors:
        descriptors = [np.zeros((0, 128), np.float32)]
    return FaceTrack(
        track_id=track_id,
        frames=full.astype(np.int64),
        landmarks=smooth,
        boxes=boxes.astype(np.float32),
        raw_landmarks=lm.astype(np.float32),
        detected=detected,
        descriptors=np.vstack(descriptors).astype(np.float32),
    )


def _interp(full: np.ndarray, known: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Linear interpolation of (len(known), K) values onto the frames ``full``."""
    return np.stack([np.interp(full, known, values[:, k]) for k in range(values.shape[1])], axis=1)
