"""Alignment (eye similarity, antialiased warps, paste-back) and the u-shape mask planner."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub.analysis.align import (
    TEMPLATE,
    eye_centres,
    paste_region,
    similarity_to_template,
    transform_points,
    warp_to_crop,
    warp_to_frame,
)
from lipdub.analysis.masks import UShapePlanner, blend_mask, mouth_opening, plan, yaw_ratio
from lipdub.analysis.settings import AnalysisSettings


def template_face(size: float = 256.0, opening: float = 0.0, yaw: float = 0.0) -> np.ndarray:
    """68 landmarks of a frontal face drawn on the crop template (IOD = 0.27 size)."""
    iod = (TEMPLATE[1, 0] - TEMPLATE[0, 0]) * size
    ex, ey = 0.5 * size, TEMPLATE[0, 1] * size
    lm = np.zeros((68, 2))
    ang = np.linspace(np.pi, 0, 17)  # Jaw: half ellipse from ear to ear, chin at 1.85 IOD.
    lm[0:17, 0] = ex + 1.0 * iod * np.cos(ang)
    lm[0:17, 1] = ey + 0.1 * iod + 1.75 * iod * np.sin(np.linspace(0, np.pi, 17))
    lm[17:27] = [[ex + (i - 4.5) * 0.2 * iod, ey - 0.35 * iod] for i in range(10)]
    lm[27:31] = [[ex, ey + k * 0.2 * iod] for k in range(4)]
    lm[31:36] = [[ex + (i - 2) * 0.12 * iod, ey + 0.8 * iod] for i in range(5)]
    for c, s in ((-0.5, 36), (0.5, 42)):
        a = np.linspace(0, 2 * np.pi, 7)[:6]
        lm[s : s + 6] = np.c_[ex + c * iod + 0.15 * iod * np.cos(a), ey + 0.06 * iod * np.sin(a)]
    mouth_y = ey + 1.2 * iod
    a = np.linspace(np.pi, -np.pi, 13)[:12]
    lm[48:60] = np.c_[ex + 0.45 * iod * np.cos(a), mouth_y + 0.15 * iod * np.sin(-a)]
    lm[60:65] = [[ex + (i - 2) * 0.15 * iod, mouth_y - 0.02 * iod] for i in range(5)]
    lm[65:68] = [[ex + (1 - i) * 0.15 * iod, mouth_y + 0.02 * iod] for i in range(3)]
    drop = opening * iod  # Open the jaw: lower lip, inner lower lip and chin move down.
    lm[[55, 56, 57, 58, 59, 65, 66, 67]] += np.array([0.0, drop])
    lm[4:13, 1] += drop * np.sin(np.linspace(0, np.pi, 9))
    lm[27:36, 0] += yaw * 0.6 * iod
    return lm


def test_similarity_puts_the_eyes_on_the_template():
    rng = np.random.default_rng(0)
    lm = template_face(100.0)
    theta = 0.3
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    frame_lm = (lm @ rot.T) * 2.3 + rng.uniform(100, 300, 2)
    for size in (256, 128):
        m = similarity_to_template(frame_lm, size)
        assert m.shape == (2, 3)
        assert np.allclose(transform_points(m, eye_centres(frame_lm)), TEMPLATE * size)


def test_shrinking_warp_is_antialiased():
    # A 1-px checkerboard shrunk 4x must come out mid-grey, not aliased stripes.
    y, x = np.mgrid[0:1024, 0:1024]
    frame = np.repeat((((x + y) % 2) * 255).astype(np.uint8)[..., None], 3, -1)
    lm = template_face(256.0) * 4.0  # Face 4x larger than the crop.
    crop = warp_to_crop(frame, similarity_to_template(lm, 256), 256)
    assert abs(float(crop.mean()) - 127.5) < 3
    assert crop.std() < 8


def test_paste_back_leaves_pixels_outside_the_mask_untouched():
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    lm = template_face(256.0) * 0.9 + [180, 80]
    m = similarity_to_template(lm, 256)
    crop = warp_to_crop(frame, m, 256)
    mask = plan(transform_points(m, lm), 256)
    box = paste_region(m, 256, frame.shape)
    back = warp_to_frame(crop, m, box)
    soft = blend_mask(mask, m, box, feather_px=6.0)
    region = frame[box[1] : box[3], box[0] : box[2]].astype(np.float32)
    a = soft[..., None]
    out = frame.copy()
    out[box[1] : box[3], box[0] : box[2]] = np.round(region * (1 - a) + back * a).astype(np.uint8)
    untouched = np.ones(frame.shape[:2], bool)
    untouched[box[1] : box[3], box[0] : box[2]] = soft == 0
    assert np.array_equal(out[untouched], frame[untouched])
    assert soft.max() == 1.0 and soft.min() == 0.0


def test_roundtrip_of_a_smooth_image_is_close_inside_the_mask():
    y, x = np.mgrid[0:480, 0:640]
    frame = np.stack([x * 0.3, y * 0.4, (x + y) * 0.2], -1).astype(np.uint8)
    lm = template_face(256.0) * 1.2 + [120, 40]
    m = similarity_to_template(lm, 256)
    box = paste_region(m, 256, frame.shape)
    back = warp_to_frame(warp_to_crop(frame, m, 256), m, box)
    soft = blend_mask(plan(transform_points(m, lm), 256), m, box, 4.0)
    region = frame[box[1] : box[3], box[0] : box[2]].astype(np.float32)
    err = np.abs(back.astype(np.float32) - region)[soft > 0]
    assert err.mean() < 1.5


def test_mask_covers_mouth_and_chin_even_wide_open():
    planner = UShapePlanner()
    for opening in (0.0, 0.5):
        lm = template_face(256.0, opening=opening)
        mask = planner.plan(lm, 256)
        assert mask.dtype == np.float32 and mask.shape == (256, 256)
        inside = [
            mask[round(float(y)), round(float(x))]
            for x, y in lm[list(range(4, 13)) + list(range(48, 68))]
        ]
        assert min(inside) > 0.99, opening
        # Eyes stay outside.
        assert mask[int(lm[37, 1]), int(lm[37, 0])] == 0.0
    closed = planner.plan(template_face(256.0), 256)
    wide = planner.plan(template_face(256.0, opening=0.5), 256)
    assert wide.sum() > closed.sum() * 1.1
    assert mouth_opening(template_face(256.0, opening=0.5)) > 0.4


def test_mask_grows_on_the_far_side_when_the_head_turns():
    s = AnalysisSettings()
    planner = UShapePlanner(s)
    lm = template_face(256.0, yaw=0.3)
    assert yaw_ratio(lm) > 0.15
    mask = planner.plan(lm, 256)
    straight = UShapePlanner(AnalysisSettings(mask_yaw_gain=0.0)).plan(lm, 256)
    right = slice(128, 256)
    assert mask[:, right].sum() > straight[:, right].sum()
    near = slice(0, 100)  # The near side keeps its outline (only the top line tilts a little).
    assert mask[:, near].sum() == pytest.approx(straight[:, near].sum(), rel=0.01)


@pytest.mark.parametrize("feather", [0.0, 3.0, 12.0])
def test_blend_mask_is_zero_outside_the_dilated_mask(feather):
    lm = template_face(256.0)
    m = similarity_to_template(lm * 0.5 + [50, 50], 256)
    mask = plan(lm, 256)
    box = paste_region(m, 256, (400, 400, 3))
    soft = blend_mask(mask, m, box, feather)
    hard = warp_to_frame(mask, m, box) >= 0.5
    assert soft.dtype == np.float32 and soft.min() >= 0 and soft.max() <= 1
    ys, xs = np.nonzero(soft)
    dist = min(
        np.hypot(*(np.argwhere(hard) - [y, x]).T).min()
        for y, x in zip(ys[::50], xs[::50], strict=True)
    )
    assert dist <= max(feather, 1.0) + 1
