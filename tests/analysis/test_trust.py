"""Trusted frames: a face squeezed against the frame's edge, smoothing that drags the landmarks
off the frame's own fit, and a jump in scale are not pasted on."""

from __future__ import annotations

import numpy as np

from lipdub.analysis.records import FaceTrack
from lipdub.analysis.trust import MAX_DEVIATION, trusted_frames
from tests.exemplar.faces import face_landmarks

SHAPE = (480, 640, 3)


def track(landmarks: list[np.ndarray], raw: list[np.ndarray] | None = None) -> FaceTrack:
    lm = np.stack(landmarks).astype(np.float32)
    return FaceTrack(
        track_id=0,
        frames=np.arange(len(lm)),
        landmarks=lm,
        boxes=np.zeros((len(lm), 4), np.float32),
        raw_landmarks=None if raw is None else np.stack(raw).astype(np.float32),
    )


def test_a_still_face_is_trusted_everywhere() -> None:
    faces = [face_landmarks((320, 200), 1.5, opening=0.1 * (k % 3)) for k in range(10)]
    assert trusted_frames(track(faces, faces), SHAPE).all()


def test_a_face_at_the_frame_edge_is_not() -> None:
    # Panning right: the jaw reaches the frame's right edge from frame 3 on.
    faces = [face_landmarks((400 + 60 * k, 200), 1.5) for k in range(6)]
    right = [f[:17, 0].max() for f in faces]
    got = trusted_frames(track(faces), SHAPE)
    assert got.tolist() == [r < SHAPE[1] - 1 - 0.1 * 60 for r in right]
    assert got[:2].all() and not got[-1]


def test_smoothing_that_drags_the_face_is_not() -> None:
    faces = [face_landmarks((320, 200), 1.5) for _ in range(5)]
    raw = [f.copy() for f in faces]
    iod = 60.0  # face_landmarks: 40 px at scale 1.
    raw[2] = raw[2] + (1.5 * MAX_DEVIATION * iod, 0)  # The frame's own fit is elsewhere.
    raw[3] = raw[3] + (0.5 * MAX_DEVIATION * iod, 0)
    assert trusted_frames(track(faces, raw), SHAPE).tolist() == [True, True, False, True, True]


def test_a_jump_in_scale_is_not() -> None:
    scales = [1.5, 1.52, 1.2, 1.22, 1.24]  # A 21 % drop at frame 2.
    faces = [face_landmarks((320, 200), s) for s in scales]
    assert trusted_frames(track(faces), SHAPE).tolist() == [True, True, False, True, True]
