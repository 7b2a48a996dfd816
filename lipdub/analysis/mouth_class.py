"""Mouth classes from the mouth's own contour: closed, lip-teeth, rounded, open, spread, neutral.

One function of the mouth shape (:mod:`lipdub.analysis.mouth_shape`: the 20 mouth points of the
68-point layout, roll-free, in inter-ocular distances), so any landmarker that fills those points
feeds it, and the bank's classes, the bench's closure measure and QC agree on what "closed" is.
No audio is needed: footage with other speech, or none, still tells what a mouth shows.

Geometry (:func:`mouth_geometry`), all in IOD:

- ``gap``: inner-lip gap, the mean distance of the three inner pairs (61–67, 62–66, 63–65);
- ``width``: outer corner to corner (48–54); rounding narrows it, spreading widens it;
- ``lower``: the lower lip's visible height (57–66); it shrinks when the lip is drawn under
  the upper teeth (f/v).

Thresholds are the actor's own (:class:`MouthScale`, from quantiles of their frames), because
mouths differ: the lips count as *closed* where the gap is at most the actor's 10th percentile
plus :data:`CLOSED_MARGIN` (0.02 IOD) — the same test the viseme bench applies to outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipdub.phonetics.visemes import Viseme

#: Gap above the actor's 10th percentile still counted as closed lips (IOD).
CLOSED_MARGIN = 0.02
#: The most a gap may be for a frame to be *shown* as closed lips where it can be: an actor who
#: seldom closes their lips has a 10th percentile well apart (0.11 IOD is seen), and a p/b/m
#: must get lips that meet, not that actor's usual narrowest opening (IOD).
CLOSED_CAP = 0.05
#: Floors of the spreads costs are divided by (IOD): an actor who hardly moves is not amplified.
MIN_SPREAD = 0.02
#: A cost of 1 is this share of the actor's 10th–90th percentile spread past the threshold.
COST_SCALE = 0.25

# Indices into the 20-point mouth shape (dlib 48–67 minus 48).
_INNER_UPPER = (13, 14, 15)
_INNER_LOWER = (19, 18, 17)
_CORNERS = (0, 6)
_LOWER_OUTER, _LOWER_INNER = 9, 18


def closed_level(gaps: np.ndarray) -> float | None:
    """The actor's closed level from their inner-lip gaps (IOD; NaN ignored; None: no gap):
    the 10th percentile plus :data:`CLOSED_MARGIN`. The bank's classes, the viseme bench and QC
    all take "closed" from here."""
    g = np.asarray(gaps, np.float64)
    g = g[np.isfinite(g)]
    return float(np.quantile(g, 0.1)) + CLOSED_MARGIN if g.size else None


@dataclass(frozen=True)
class MouthGeometry:
    """Per-frame measures of mouth shapes (see the module doc), each (N,) in IOD."""

    gap: np.ndarray
    width: np.ndarray
    lower: np.ndarray

    def __len__(self) -> int:
        return len(self.gap)


def mouth_geometry(shapes: np.ndarray) -> MouthGeometry:
    """Geometry of (N, 20, 2) mouth shapes (:func:`~lipdub.analysis.mouth_shape.mouth_shape`)."""
    s = np.asarray(shapes, np.float64).reshape(-1, 20, 2)
    gap = np.linalg.norm(s[:, _INNER_LOWER] - s[:, _INNER_UPPER], axis=-1).mean(-1)
    width = np.linalg.norm(s[:, _CORNERS[1]] - s[:, _CORNERS[0]], axis=-1)
    lower = np.linalg.norm(s[:, _LOWER_OUTER] - s[:, _LOWER_INNER], axis=-1)
    return MouthGeometry(gap, width, lower)


@dataclass(frozen=True)
class MouthScale:
    """One actor's thresholds, from quantiles of their own frames (see the module doc)."""

    closed: float  # Gap at or below which the lips are closed.
    open: float  # Gap at or above which the mouth is wide open (75th percentile).
    narrow: float  # Width at or below which the lips are rounded (25th percentile, lips apart).
    wide: float  # Width at or above which the lips are spread (75th percentile).
    tucked: float  # Lower-lip height at or below which the lip is drawn in (25th percentile).
    gap_spread: float  # 10th–90th percentile spread of the gap (floored).
    width_spread: float  # ... of the width.
    lower_spread: float  # ... of the lower lip's height.

    @classmethod
    def of(cls, geom: MouthGeometry) -> MouthScale:
        """The thresholds of an actor whose frames have ``geom`` (at least one frame).

        Raises:
            ValueError: no frames.
        """
        if len(geom) == 0:
            raise ValueError("no mouth to take a scale from")

        def q(x: np.ndarray, p: float) -> float:
            return float(np.quantile(x, p))

        closed = closed_level(geom.gap)
        assert closed is not None  # At least one frame, checked above.
        apart = geom.gap > closed
        w = geom.width[apart] if apart.any() else geom.width
        return cls(
            closed=closed,
            open=max(q(geom.gap, 0.75), closed + MIN_SPREAD),
            narrow=q(w, 0.25),
            wide=q(w, 0.75),
            tucked=q(geom.lower, 0.25),
            gap_spread=max(q(geom.gap, 0.9) - q(geom.gap, 0.1), MIN_SPREAD),
            width_spread=max(q(geom.width, 0.9) - q(geom.width, 0.1), MIN_SPREAD),
            lower_spread=max(q(geom.lower, 0.9) - q(geom.lower, 0.1), MIN_SPREAD),
        )


def is_closed(geom: MouthGeometry, scale: MouthScale) -> np.ndarray:
    """(N,) bool: lips closed (gap at most the actor's closed level)."""
    return np.asarray(geom.gap <= scale.closed)


def closed_to_show(geom: MouthGeometry, scale: MouthScale) -> np.ndarray:
    """(N,) bool: the frames a p/b/m may show — closed, and no wider than :data:`CLOSED_CAP`
    where the actor has such frames at all (else every closed frame; none: all False)."""
    closed = is_closed(geom, scale)
    tight = closed & (geom.gap <= CLOSED_CAP)
    return tight if tight.any() else closed


def mouth_classes(geom: MouthGeometry, scale: MouthScale) -> np.ndarray:
    """(N,) int :class:`~lipdub.phonetics.visemes.Viseme` of each frame, first rule that holds:
    closed; lip-teeth (nearly closed, lower lip drawn in); open; rounded; spread; neutral."""
    out = np.full(len(geom), int(Viseme.NEUTRAL), np.int64)
    rules = [
        (geom.width >= scale.wide, Viseme.SPREAD),
        (geom.width <= scale.narrow, Viseme.ROUNDED),
        (geom.gap >= scale.open, Viseme.OPEN),
        ((geom.gap <= 2 * scale.closed) & (geom.lower <= scale.tucked), Viseme.LIP_TEETH),
        (is_closed(geom, scale), Viseme.CLOSED),
    ]
    for hold, cls in rules:  # Later rules win: listed from weakest to strongest.
        out[hold] = int(cls)
    return out


def viseme_costs(geom: MouthGeometry, scale: MouthScale) -> np.ndarray:
    """(N, C) cost of showing each frame where the dub asks for each class (columns in
    :class:`~lipdub.phonetics.visemes.Viseme` order): 0 where the frame shows it, 1 at
    :data:`COST_SCALE` of the actor's spread past the class's threshold, growing linearly;
    for closed lips from a gap of 0, so the tightest closure is preferred."""

    def past(x: np.ndarray, spread: float) -> np.ndarray:
        return np.maximum(x, 0.0) / (COST_SCALE * spread)

    g, w, lo = geom.gap, geom.width, geom.lower
    cost = np.zeros((len(geom), len(Viseme)), np.float64)
    cost[:, Viseme.CLOSED] = past(g, scale.gap_spread)  # The more closed, the better.
    cost[:, Viseme.LIP_TEETH] = past(g - 2 * scale.closed, scale.gap_spread) + past(
        lo - scale.tucked, scale.lower_spread
    )
    apart = past(scale.closed - g, scale.gap_spread)  # Rounded and spread lips are apart.
    cost[:, Viseme.ROUNDED] = past(w - scale.narrow, scale.width_spread) + apart
    cost[:, Viseme.OPEN] = past(scale.open - g, scale.gap_spread)
    cost[:, Viseme.SPREAD] = past(scale.wide - w, scale.width_spread) + apart
    return cost
