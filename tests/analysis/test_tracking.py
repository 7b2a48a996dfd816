"""The iou-appearance tracker on synthetic detections: linking, gaps, cuts, false hits."""

from __future__ import annotations

import numpy as np

from lipdub.analysis.records import FaceObservation
from lipdub.analysis.settings import AnalysisSettings
from lipdub.analysis.tracking import IouAppearanceTracker, iou
from tests.analysis.test_settings_smoothing import face


def obs(cx: float, cy: float, detected: bool = True, hist: float = 0.0) -> FaceObservation:
    lm = face(cx, cy)
    h = np.zeros(128, np.float32)
    h[int(hist)] = 1.0
    return FaceObservation(
        box=np.array([cx - 50, cy - 50, cx + 50, cy + 50], float),
        landmarks=lm,
        score=1.0,
        detected=detected,
        appearance=h,
    )


def test_two_faces_are_followed_apart_and_a_gap_is_bridged():
    tracker = IouAppearanceTracker(AnalysisSettings(max_gap=4))
    for f in range(30):
        faces = [obs(100 + f, 100, hist=0)]
        if not 10 <= f < 13:  # The second face vanishes for 3 frames.
            faces.append(obs(400 - f, 120, hist=5))
        tracker.update(f, faces, new_shot=f == 0)
    tracks, warnings = tracker.finish(25.0)
    assert [len(t) for t in tracks] == [30, 30]
    assert warnings == []
    second = tracks[1]
    assert np.array_equal(second.frames, np.arange(30))
    assert not second.detected[10:13].any() and second.detected[13]
    # Bridged frames lie between their neighbours.
    assert second.boxes[9, 0] > second.boxes[11, 0] > second.boxes[13, 0]


def test_a_cut_starts_new_tracks_even_when_boxes_overlap():
    tracker = IouAppearanceTracker()
    for f in range(20):
        tracker.update(f, [obs(100, 100)], new_shot=f in (0, 10))
    tracks, _ = tracker.finish(25.0)
    assert [(int(t.frames[0]), int(t.frames[-1])) for t in tracks] == [(0, 9), (10, 19)]
    assert [t.track_id for t in tracks] == [0, 1]


def test_a_face_found_once_is_dropped_with_a_warning():
    tracker = IouAppearanceTracker(AnalysisSettings(min_track_detections=2))
    for f in range(12):
        faces = [obs(100, 100)]
        if 3 <= f < 9:  # A false hit, then carried without confirmation.
            faces.append(obs(300, 300, detected=f == 3))
        tracker.update(f, faces, new_shot=f == 0)
    tracks, warnings = tracker.finish(25.0)
    assert len(tracks) == 1
    assert "dropped" in warnings[0]


def test_unconfirmed_carried_tail_is_trimmed():
    tracker = IouAppearanceTracker()
    for f in range(20):
        o = obs(100, 100, detected=f % 5 == 0 and f < 10)
        o.missed = f in (10, 15)  # Detector passes that did not find it any more.
        tracker.update(f, [o], new_shot=f == 0)
    (track,), _ = tracker.finish(25.0)
    assert int(track.frames[-1]) == 9


def test_iou():
    a = np.array([0, 0, 10, 10.0])
    assert iou(a, a) == 1.0
    assert iou(a, a + np.array([5, 0, 5, 0])) == 50 / 150
    assert iou(a, a + 20) == 0.0


def test_a_track_the_detector_scores_low_is_dropped_as_a_false_detection():
    tracker = IouAppearanceTracker(AnalysisSettings(min_track_score=0.2))
    for f in range(20):
        weak = obs(400, 300, hist=5)
        weak.score = 0.05  # A face-like pattern: found on every pass, but barely.
        tracker.update(f, [obs(100, 100), weak], new_shot=f == 0)
    tracks, warnings = tracker.finish(25.0)
    assert len(tracks) == 1 and tracks[0].boxes[0, 0] == 50
    assert len(warnings) == 1 and "likely false detection" in warnings[0]
    assert "0.05" in warnings[0]
