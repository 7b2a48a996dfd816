"""Warp: landmarks land where asked; the pose alignment and colour match do what they say."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub.exemplar.warp import (
    CONTROL,
    apply,
    destination_landmarks,
    fit_similarity,
    match_colour,
    piecewise_affine,
)
from tests.exemplar.faces import face_landmarks


def test_similarity_is_recovered() -> None:
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 100, (10, 2))
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    m = fit_similarity(pts, pts @ rot.T + shift)
    np.testing.assert_allclose(m[:, :2], rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


def test_destination_keeps_target_pose_and_takes_bank_mouth() -> None:
    target = face_landmarks(centre=(200, 180), scale=2.0, opening=0.0)
    bank = face_landmarks(centre=(60, 50), scale=1.0, opening=0.4)  # Half size, open mouth.
    dest, pose = destination_landmarks(bank, target)
    np.testing.assert_allclose(dest[27:48], target[27:48])  # Nose and eyes: the target's.
    np.testing.assert_allclose(dest[[0, 1, 15, 16]], target[[0, 1, 15, 16]])  # Upper jaw line.
    np.testing.assert_allclose(dest[48:68], apply(pose, bank)[48:68], atol=1e-9)
    assert dest[66, 1] - dest[62, 1] > target[66, 1] - target[62, 1] + 10  # Mouth opened.
    assert dest[8, 1] > target[8, 1]  # The chin dropped with it.


def test_piecewise_affine_moves_landmarks_where_asked() -> None:
    # A source image with a dot at every control landmark; after the warp each dot must be at
    # its destination (to within the dot's own half-pixel rounding).
    src_lm = face_landmarks(centre=(100, 100), scale=1.5, opening=0.3)
    dst_lm = face_landmarks(centre=(120, 110), scale=1.6, opening=0.05)
    image = np.zeros((300, 300, 3), np.uint8)
    box = (20, 20, 280, 290)
    dest, pose = destination_landmarks(src_lm, dst_lm)
    ctrl = list(CONTROL)
    errors = []
    for k in (8, 33, 48, 54, 57, 62, 66):
        image[:] = 0
        x, y = np.round(src_lm[k]).astype(int)
        image[y - 1 : y + 2, x - 1 : x + 2] = 255
        back = np.linalg.inv(np.vstack([pose, [0, 0, 1]]))[:2]
        out = piecewise_affine(image, src_lm[ctrl], dest[ctrl], box, back)
        grey = out[..., 0].astype(np.float64)
        ys, xs = np.mgrid[box[1] : box[3], box[0] : box[2]]
        centroid = np.array([(grey * xs).sum(), (grey * ys).sum()]) / grey.sum()
        # The dot sits on the landmark rounded to a pixel (≤ 0.71 px off), and the local map
        # scales by about 1.1: within 1 px of the destination.
        errors.append(np.linalg.norm(centroid - dest[k]))
    assert max(errors) < 1.0, errors


def test_match_colour_moves_the_mean() -> None:
    rng = np.random.default_rng(1)
    face = rng.integers(60, 120, (40, 40, 3)).astype(np.uint8)
    target = np.clip(face.astype(int) * [1.2, 1.0, 0.9], 0, 255).astype(np.uint8)
    region = np.ones((40, 40), bool)
    out = match_colour(face, target, region)
    np.testing.assert_allclose(out.reshape(-1, 3).mean(0), target.reshape(-1, 3).mean(0), atol=1.0)
    assert np.array_equal(match_colour(face, target, np.zeros((40, 40), bool)), face)


def test_warp_of_identity_is_exact_inside() -> None:
    lm = face_landmarks(centre=(80, 80), scale=1.0, opening=0.2)
    rng = np.random.default_rng(2)
    image = rng.integers(0, 255, (160, 160, 3)).astype(np.uint8)
    ctrl = list(CONTROL)
    identity = np.hstack([np.eye(2), np.zeros((2, 1))])
    out = piecewise_affine(image, lm[ctrl], lm[ctrl], (10, 10, 150, 150), identity)
    assert np.array_equal(out, image[10:150, 10:150])


@pytest.mark.parametrize("opening", [0.0, 0.5])
def test_helper_faces_are_plausible(opening: float) -> None:
    lm = face_landmarks(centre=(0, 0), scale=1.0, opening=opening)
    assert lm.shape == (68, 2)
    assert lm[8, 1] > lm[57, 1] > lm[33, 1] > lm[27, 1]  # Chin below lip below nose below bridge.
