"""Synthetic 68-point faces for the exemplar tests (dlib's layout, made by formula)."""

from __future__ import annotations

import numpy as np


def face_landmarks(
    centre: tuple[float, float] = (0.0, 0.0), scale: float = 1.0, opening: float = 0.0
) -> np.ndarray:
    """(68, 2) landmarks of a frontal face: eyes 40 px apart at ``scale`` 1, the inner lips
    ``opening`` IOD apart, the chin dropping with them; centred on the nose bridge."""
    iod = 40.0
    lm = np.zeros((68, 2))
    gap = opening * iod
    # Jaw 0..16: a U from ear to ear; its lower part drops with the mouth.
    for i in range(17):
        a = np.pi * i / 16
        drop = gap * max(0.0, np.sin(a)) ** 2
        lm[i] = [-1.1 * iod * np.cos(a), 0.2 * iod + 1.6 * iod * np.sin(a) + drop]
    for k, i in enumerate(range(17, 27)):  # Brows.
        lm[i] = [-0.9 * iod + k * 0.2 * iod, -0.4 * iod]
    for k, i in enumerate(range(27, 31)):  # Nose bridge to tip.
        lm[i] = [0.0, k * 0.25 * iod]
    for k, i in enumerate(range(31, 36)):  # Nostrils.
        lm[i] = [(-0.25 + 0.125 * k) * iod, 0.85 * iod]
    for e, cx in ((36, -0.5 * iod), (42, 0.5 * iod)):  # Eyes: six points round each centre.
        for k in range(6):
            a = 2 * np.pi * k / 6
            lm[e + k] = [cx - 0.15 * iod * np.cos(a), -0.05 * iod * np.sin(a)]
    mouth_y = 1.25 * iod
    for k in range(12):  # Outer lips 48..59.
        a = 2 * np.pi * k / 12
        lm[48 + k] = [-0.45 * iod * np.cos(a), mouth_y - (0.12 * iod + gap / 2) * np.sin(a)]
    for k in range(8):  # Inner lips 60..67.
        a = 2 * np.pi * k / 8
        lm[60 + k] = [-0.3 * iod * np.cos(a), mouth_y - (0.02 * iod + gap / 2) * np.sin(a)]
    return lm * scale + np.asarray(centre, np.float64)
