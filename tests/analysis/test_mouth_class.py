"""Mouth classes from the contour alone: closed, rounded, open, spread, lip-teeth, relative to
the actor's own range."""

from __future__ import annotations

import numpy as np

from lipdub.analysis.mouth_class import (
    CLOSED_MARGIN,
    MouthScale,
    is_closed,
    mouth_classes,
    mouth_geometry,
    viseme_costs,
)
from lipdub.phonetics.visemes import Viseme


def shape(gap: float, width: float, lower: float = 0.12) -> np.ndarray:
    """A 20-point mouth (dlib 48–67 order, IOD units) with this inner gap, width and lower lip."""
    s = np.zeros((20, 2))
    half = width / 2
    s[0], s[6] = (-half, 0), (half, 0)  # Outer corners.
    for k, x in zip(range(1, 6), np.linspace(-0.6, 0.6, 5), strict=True):
        s[k] = (x * half, -0.1 - gap / 2)  # Outer upper lip.
    for k, x in zip(range(7, 12), np.linspace(0.6, -0.6, 5), strict=True):
        s[k] = (x * half, gap / 2 + lower)  # Outer lower lip (9: middle).
    s[12], s[16] = (-0.8 * half, 0), (0.8 * half, 0)  # Inner corners.
    for k, x in zip((13, 14, 15), (-0.4, 0.0, 0.4), strict=True):
        s[k] = (x * half, -gap / 2)  # Inner upper.
    for k, x in zip((17, 18, 19), (0.4, 0.0, -0.4), strict=True):
        s[k] = (x * half, gap / 2)  # Inner lower (18: middle).
    return s


def test_geometry_reads_gap_width_and_lower_lip() -> None:
    g = mouth_geometry(np.stack([shape(0.0, 0.9), shape(0.3, 0.8, lower=0.05)]))
    np.testing.assert_allclose(g.gap, [0.0, 0.3], atol=1e-9)
    np.testing.assert_allclose(g.width, [0.9, 0.8], atol=1e-9)
    np.testing.assert_allclose(g.lower, [0.12, 0.05], atol=1e-9)


def test_classes_follow_the_actors_own_range() -> None:
    rng = np.random.default_rng(0)
    # An actor: a fifth of frames closed, the rest spread over openings and widths.
    gaps = np.concatenate([np.zeros(20), rng.uniform(0.05, 0.35, 80)])
    widths = rng.uniform(0.75, 1.0, 100)
    shapes = np.stack([shape(g, w) for g, w in zip(gaps, widths, strict=True)])
    geom = mouth_geometry(shapes)
    scale = MouthScale.of(geom)
    assert scale.closed == np.quantile(geom.gap, 0.1) + CLOSED_MARGIN
    classes = mouth_classes(geom, scale)
    closed = is_closed(geom, scale)
    assert closed[:20].all() and (classes[:20] == Viseme.CLOSED).all()
    assert (classes[gaps > scale.open + 0.01] == Viseme.OPEN).all()
    probe = mouth_geometry(np.stack([shape(0.15, 0.70), shape(0.1, 1.0), shape(0.0, 0.9)]))
    assert list(mouth_classes(probe, scale)) == [Viseme.ROUNDED, Viseme.SPREAD, Viseme.CLOSED]
    cost = viseme_costs(probe, scale)
    assert cost[2, Viseme.CLOSED] == 0 and cost[0, Viseme.CLOSED] > 1
    assert cost[0, Viseme.ROUNDED] == 0 and cost[1, Viseme.ROUNDED] > 1
    assert cost[1, Viseme.SPREAD] == 0 and cost[0, Viseme.SPREAD] > 1
    assert (cost[:, Viseme.NEUTRAL] == 0).all()
