"""The bank: patches cut at native resolution, unusable frames left out, saved and reloaded."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from lipdub.analysis.records import FaceTrack
from lipdub.errors import ConfigError
from lipdub.exemplar.bank import Bank, BankPart, PartBuilder
from lipdub.exemplar.track import ExemplarSettings, thin_reason
from tests.exemplar.faces import face_landmarks

H, W = 240, 320


def textured_frame(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (H, W, 3)).astype(np.uint8)


def track_of(landmarks: list[np.ndarray], detected: list[bool] | None = None) -> FaceTrack:
    lm = np.stack(landmarks).astype(np.float32)
    n = len(lm)
    return FaceTrack(
        track_id=0,
        frames=np.arange(n),
        landmarks=lm,
        boxes=np.zeros((n, 4), np.float32),
        detected=None if detected is None else np.array(detected),
    )


def build(track: FaceTrack, frames: list[np.ndarray], tmp: Path | None = None) -> BankPart:
    builder = PartBuilder("shot:a", track, (H, W, 3), None if tmp is None else tmp / "p.npy")
    for j, f in enumerate(frames):
        builder.add(j, f)
    return builder.finish()


def test_patches_are_the_source_pixels_and_landmarks_follow() -> None:
    lms = [face_landmarks((160, 90), 1.2, opening=0.1 * k) for k in range(4)]
    frames = [textured_frame(k) for k in range(4)]
    part = build(track_of(lms), frames)
    assert part.usable.all()
    for j in range(4):
        x0, y0 = part.origins[j]
        h, w = part.sizes[j]
        assert np.array_equal(part.patch(j), frames[j][y0 : y0 + h, x0 : x0 + w])
        np.testing.assert_allclose(part.patch_landmarks(j) + part.origins[j], lms[j], atol=1e-5)


def test_turned_bridged_blurred_and_cut_off_frames_are_left_out() -> None:
    lms = [face_landmarks((160, 90), 1.2, opening=0.2) for _ in range(6)]
    turned = lms[1].copy()
    turned[30, 0] = turned[16, 0] - 2  # Nose tip at the jaw's end: a profile.
    lms[1] = turned
    lms[3] = lms[3] + (0, 150)  # Mouth and chin below the frame.
    frames = [textured_frame(k) for k in range(6)]
    frames[4] = cv2.GaussianBlur(frames[4], (0, 0), 4)  # Motion blur.
    part = build(track_of(lms, detected=[True, True, False, True, True, True]), frames)
    assert part.usable.tolist() == [True, False, False, False, False, True]


def test_save_load_round_trip_and_flattening(tmp_path: Path) -> None:
    lms = [face_landmarks((160, 90), 1.2, opening=0.05 * k) for k in range(5)]
    part = build(
        track_of(lms, detected=[True, True, False, True, True]),
        [textured_frame(k) for k in range(5)],
        tmp_path,
    )
    part.save(tmp_path / "part")
    again = BankPart.load(tmp_path / "part")
    assert again.source == "shot:a"
    assert np.array_equal(np.asarray(again.patches), np.asarray(part.patches))
    assert np.array_equal(again.usable, part.usable)
    bank = Bank.of([part, again])
    assert len(bank) == 8
    # Runs of consecutive usable frames of one part follow each other; nothing crosses parts.
    assert bank.follows.tolist() == [False, True, False, True] * 2
    labels, frames = bank.sources()
    assert frames.tolist() == [0, 1, 3, 4] * 2 and set(labels) == {"shot:a"}


def test_thin_reason() -> None:
    s = ExemplarSettings(min_frames=10, min_spread=0.03)
    still = [face_landmarks(opening=0.1) for _ in range(40)]
    talking = [face_landmarks(opening=0.3 * (k % 5) / 4) for k in range(40)]
    assert "fewer than 10" in thin_reason([np.stack(still[:5])], s)
    assert "distinct mouth shapes" in thin_reason([np.stack(still)], s)
    assert thin_reason([np.stack(talking)], s) is None


def test_settings_are_checked() -> None:
    assert ExemplarSettings.from_options({"holdout": 12}).holdout == 12
    with pytest.raises(ConfigError, match="unknown exemplar option 'hold_out'"):
        ExemplarSettings.from_options({"hold_out": 12})
    with pytest.raises(ConfigError, match="must be a number"):
        ExemplarSettings.from_options({"jump": "high"})


def test_a_track_with_no_usable_frame_falls_back_before_the_pass() -> None:
    """A talking track the detector never saw itself (every frame bridged): the generator's
    ``thin`` says so from the landmarks, so the renderer gives it to the fallback up front
    instead of finding an empty bank after the pass over the source."""
    from lipdub.analysis.masks import UShapePlanner
    from lipdub.exemplar.bank import usable_by_landmarks
    from lipdub.plugins.generator_exemplar import create
    from lipdub.render.protocols import TrackContext

    talking = [face_landmarks((160, 90), 1.2, opening=0.3 * (k % 5) / 4) for k in range(40)]
    context = TrackContext("shot:a", (H, W, 3), None, UShapePlanner(), 0.1)
    gen = create({"min_frames": 10})
    seen = track_of(talking)
    assert usable_by_landmarks(seen, (H, W, 3)).all() and gen.thin(seen, context) is None
    bridged = track_of(talking, detected=[False] * 40)
    assert not usable_by_landmarks(bridged, (H, W, 3)).any()
    assert "0 frames of this actor" in gen.thin(bridged, context)
