"""Cut detection with PySceneDetect's AdaptiveDetector, fed frames decoded by lipdub.media.read.

PySceneDetect compares each frame with the one before in HSV (hue, saturation, luma change) and,
in the adaptive detector its CLI uses by default, calls a cut where that change is several times
the average change of the frames around it, so camera moves and flashes do not cut. Frames are
shrunk to about 256 px wide first (bilinear), as PySceneDetect's own auto-downscale does: content
change is a mean over pixels, so resolution buys nothing but time.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from scenedetect.common import FrameTimecode
from scenedetect.detector import FlashFilter
from scenedetect.detectors import AdaptiveDetector, ContentDetector

from lipdub.analysis.settings import AnalysisSettings
from lipdub.media.read import open_video

log = logging.getLogger(__name__)

#: Width frames are reduced to before scoring (PySceneDetect's DEFAULT_MIN_WIDTH is 256).
SCORE_WIDTH = 256


class SceneDetectShots:
    """Shot detector on PySceneDetect; ``method`` is "adaptive" (default) or "content".

    Arguments:
        settings: uses ``shot_threshold`` (adaptive ratio; for "content" the content threshold),
            ``shot_min_content`` and ``shot_min_frames``.
        method: which PySceneDetect detector.
    """

    name = "scenedetect"

    def __init__(self, settings: AnalysisSettings | None = None, method: str = "adaptive") -> None:
        if method not in ("adaptive", "content"):
            raise ValueError(f"unknown scenedetect method {method!r}; use adaptive or content")
        self.settings = settings or AnalysisSettings()
        self.method = method

    def _detector(self) -> AdaptiveDetector | ContentDetector:
        s = self.settings
        if self.method == "content":
            return ContentDetector(
                threshold=s.shot_threshold,
                min_scene_len=s.shot_min_frames,
                filter_mode=FlashFilter.Mode.SUPPRESS,  # Report cuts at once (no merge delay).
            )
        return AdaptiveDetector(
            adaptive_threshold=s.shot_threshold,
            min_scene_len=s.shot_min_frames,
            min_content_val=s.shot_min_content,
        )

    def session(self, fps: Fraction) -> CutSession:
        """A streaming cut detector for frames pushed one at a time (see :class:`CutSession`)."""
        return CutSession(self._detector(), fps)

    def detect(self, video: Path, start: int, stop: int, *, conform: bool = False) -> list[int]:
        """First frames of new shots inside ``[start, stop)``, absolute frame numbers (of the
        conformed source with ``conform``)."""
        with open_video(video, conform) as src:
            cuts = self.session(src.info.fps)
            for n, frame in enumerate(src.frames(start, stop), start):
                cuts.push(n, frame)
            found = [c for c in cuts.finish() if start < c < stop]
        log.debug("%s [%d, %d): cuts at %s", video, start, stop, found)
        return found


class CutSession:
    """Cut detection on frames pushed in order; a cut is known :attr:`lag` frames after it.

    The pipeline decodes a shot once and feeds every frame both here and to the face pass,
    holding the face pass :attr:`lag` frames behind so it learns of a cut before reaching it.
    """

    def __init__(self, detector: AdaptiveDetector | ContentDetector, fps: Fraction) -> None:
        self._detector = detector
        self._fps = fps
        self._last: FrameTimecode | None = None
        self.cuts: list[int] = []
        # AdaptiveDetector reports a cut window_width frames late; ContentDetector (with the
        # SUPPRESS flash filter) on the frame itself. One more frame of margin.
        self.lag = int(getattr(detector, "window_width", 0)) + 1

    def push(self, frame_number: int, frame: np.ndarray) -> list[int]:
        """Score one RGB frame; returns the cuts found so far (absolute frame numbers)."""
        self._last = FrameTimecode(frame_number, fps=self._fps)
        found = self._detector.process_frame(self._last, _small_bgr(frame))
        self.cuts += [c.frame_num for c in found]
        return self.cuts

    def finish(self) -> list[int]:
        """All cuts, including any the detector held back until the end."""
        if self._last is not None:
            self.cuts += [c.frame_num for c in self._detector.post_process(self._last)]
            self._last = None
        return sorted(set(self.cuts))


def _small_bgr(frame: np.ndarray) -> np.ndarray:
    """Frame reduced by a whole factor to about SCORE_WIDTH wide, BGR.

    Bilinear, as PySceneDetect's own downscale (``Interpolation.LINEAR``): on a 1080p frame an
    area average costs ~2 ms, a third of the analysis's per-frame budget, for a content score
    that is a mean over the frame's pixels anyway.
    """
    h, w = frame.shape[:2]
    k = max(1, w // SCORE_WIDTH)
    if k > 1:
        frame = cv2.resize(frame, (w // k, h // k), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
