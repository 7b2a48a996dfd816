"""Built-in blenders: feather (default), poisson (OpenCV seamless cloning), laplacian (pyramid).

Every blender leaves pixels where the mask is 0 exactly as they were: the mask is the contract
with the editor that nothing outside the lower face changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from lipdub.hookspecs import hookimpl
from lipdub.stages import StageChoice

#: Pixels with mask values strictly between these bounds form the feather band where the
#: generated face meets the source skin; colour is matched there.
BAND_LOW, BAND_HIGH = 0.02, 0.6
#: Levels of the Laplacian pyramid (each halves the size).
PYRAMID_LEVELS = 4


def _check(frame: np.ndarray, face: np.ndarray, mask: np.ndarray) -> None:
    if frame.shape != face.shape or frame.shape[:2] != mask.shape or frame.dtype != np.uint8:
        raise ValueError(
            f"blend needs frame and face uint8 (H, W, 3) and mask (H, W): got "
            f"{frame.shape} {frame.dtype}, {face.shape}, {mask.shape}"
        )


def _composite(frame: np.ndarray, face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """frame·(1 − m) + face·m, rounded; exact copy of ``frame`` where m == 0."""
    m = mask[..., None].astype(np.float32)
    out = frame.astype(np.float32) * (1.0 - m) + face.astype(np.float32) * m
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    out[mask <= 0] = frame[mask <= 0]
    return out


class FeatherBlender:
    """Soft-mask blend after shifting the face's colour to match the skin around it."""

    def __init__(self, color_match: bool = True) -> None:
        self.color_match = color_match

    def blend(self, frame: np.ndarray, face: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """See :class:`lipdub.render.protocols.Blender`."""
        _check(frame, face, mask)
        if self.color_match:
            face = match_colour(frame, face, mask)
        return _composite(frame, face, mask)


def match_colour(frame: np.ndarray, face: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift the face's per-channel mean in the feather band onto the frame's."""
    band = (mask > BAND_LOW) & (mask < BAND_HIGH)
    if band.sum() < 16:
        return face
    delta = frame[band].astype(np.float32).mean(0) - face[band].astype(np.float32).mean(0)
    return np.clip(face.astype(np.float32) + delta, 0, 255).astype(np.uint8)


class PoissonBlender:
    """Gradient-domain blend (OpenCV seamlessClone), then composited under the soft mask."""

    def blend(self, frame: np.ndarray, face: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """See :class:`lipdub.render.protocols.Blender`."""
        _check(frame, face, mask)
        hard = (mask > BAND_LOW).astype(np.uint8) * 255
        ys, xs = np.nonzero(hard)
        if len(ys) < 16:
            return frame.copy()
        # seamlessClone needs the mask's bounding box strictly inside the destination.
        hard[[0, -1], :] = 0
        hard[:, [0, -1]] = 0
        ys, xs = np.nonzero(hard)
        x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
        center = ((x0 + x1 + 1) // 2, (y0 + y1 + 1) // 2)
        bgr = cv2.seamlessClone(
            np.ascontiguousarray(face[..., ::-1]),
            np.ascontiguousarray(frame[..., ::-1]),
            hard,
            center,
            cv2.NORMAL_CLONE,
        )
        return _composite(frame, np.ascontiguousarray(bgr[..., ::-1]), mask)


class LaplacianBlender:
    """Multi-band blend: each frequency band mixed under a mask blurred to that band's scale."""

    def __init__(self, levels: int = PYRAMID_LEVELS) -> None:
        self.levels = levels

    def blend(self, frame: np.ndarray, face: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """See :class:`lipdub.render.protocols.Blender`."""
        _check(frame, face, mask)
        h, w = mask.shape
        levels = max(1, min(self.levels, int(np.log2(max(2, min(h, w)))) - 2))
        a, b = frame.astype(np.float32), match_colour(frame, face, mask).astype(np.float32)
        m = mask.astype(np.float32)
        la, lb = _laplacian(a, levels), _laplacian(b, levels)
        gm: list[np.ndarray] = [m]
        for _ in range(levels):
            gm.append(cv2.pyrDown(gm[-1]))
        mixed = [
            x * (1 - g[..., None]) + y * g[..., None] for x, y, g in zip(la, lb, gm, strict=True)
        ]
        out = mixed[-1]
        for lap in reversed(mixed[:-1]):
            out = cv2.pyrUp(out, dstsize=(lap.shape[1], lap.shape[0])) + lap
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        out[mask <= 0] = frame[mask <= 0]
        return out


def _laplacian(img: np.ndarray, levels: int) -> list[np.ndarray]:
    gauss = [img]
    for _ in range(levels):
        gauss.append(cv2.pyrDown(gauss[-1]))
    laps = [
        g - cv2.pyrUp(gauss[i + 1], dstsize=(g.shape[1], g.shape[0]))
        for i, g in enumerate(gauss[:-1])
    ]
    return [*laps, gauss[-1]]


def _feather(options: Mapping[str, Any]) -> FeatherBlender:
    return FeatherBlender(color_match=bool(options.get("color_match", True)))


def _laplacian_factory(options: Mapping[str, Any]) -> LaplacianBlender:
    return LaplacianBlender(levels=int(options.get("levels", PYRAMID_LEVELS)))


@hookimpl
def lipdub_blenders() -> list[StageChoice]:
    """The three built-in blenders."""
    return [
        StageChoice(
            "feather",
            _feather,
            "soft mask + colour match to the surrounding skin",
            {"color_match": True},
        ),
        StageChoice("poisson", lambda _o: PoissonBlender(), "OpenCV seamless (Poisson) cloning"),
        StageChoice(
            "laplacian",
            _laplacian_factory,
            "Laplacian pyramid (multi-band) blending",
            {"levels": PYRAMID_LEVELS},
        ),
    ]
