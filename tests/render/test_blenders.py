"""Built-in blenders (hook ``lipdub_blenders``): nothing outside the mask changes."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub.plugin_manager import PluginManager


def _scene(seed: int = 0):
    rng = np.random.default_rng(seed)
    h, w = 96, 80
    y, x = np.mgrid[0:h, 0:w]
    frame = np.stack([x * 2, y * 2, np.full_like(x, 140)], -1).astype(np.uint8)
    face = np.clip(frame.astype(int) + 30 + rng.integers(-5, 5, frame.shape), 0, 255)
    face = face.astype(np.uint8)
    r = np.hypot((x - 40) / 25, (y - 55) / 20)
    mask = np.clip((1.2 - r) / 0.4, 0, 1).astype(np.float32)  # Soft disc, zero outside r=1.2.
    return frame, face, mask


@pytest.mark.parametrize("name", ["feather", "poisson", "laplacian"])
def test_pixels_outside_the_mask_are_untouched(name: str):
    blender = PluginManager(autoload=False).create("blender", name)
    frame, face, mask = _scene()
    out = blender.blend(frame, face, mask)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(out[mask == 0], frame[mask == 0])
    inside = mask > 0.9
    assert np.abs(out[inside].astype(int) - frame[inside]).mean() > 1  # It did blend something.


def test_feather_matches_colour_to_the_surrounding_skin():
    pm = PluginManager(autoload=False)
    frame, face, mask = _scene()
    matched = pm.create("blender", "feather").blend(frame, face, mask)
    raw = pm.create("blender", "feather", {"color_match": False}).blend(frame, face, mask)
    band = (mask > 0.05) & (mask < 0.5)
    err_matched = np.abs(matched[band].astype(float) - frame[band]).mean()
    err_raw = np.abs(raw[band].astype(float) - frame[band]).mean()
    assert err_matched < err_raw / 2  # The +30 brightness offset is taken out at the seam.
