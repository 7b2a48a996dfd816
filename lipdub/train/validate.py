"""Validation while training the generator: held-out speakers, measured the way ``lipdub eval`` is.

The test split must stay unseen until the end, so checkpoints are chosen on speakers held out of
the training split instead (``train generator --val-speakers a,b,c``). Every ``--val-every``
steps the released generator (the weight average when ``--ema-half-life`` is on) renders each
validation clip's evaluated span (:func:`lipdub.eval.evaluate.eval_window`: first F frames,
reference from later) with the clip's own audio and with silence, and dlib measures LMD against
the real frames, as the eval does. The score is the bar of the training issue:

    margin = min(LMD_zeroed, LMD_copy) − LMD_model

positive when the mouth is closer to the truth than both the same model without audio and a
pasted reference mouth. The checkpoint with the highest margin is kept in ``<out>/best/``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lipdub.analysis.faces import DlibFaceDetector
from lipdub.data.clips import Clip, require_speakers
from lipdub.errors import ConfigError
from lipdub.eval import metrics
from lipdub.eval.evaluate import EvalWindow, copy_reference, eval_window, render_window
from lipdub.model.generator import StyleSyncGenerator

log = logging.getLogger(__name__)

VAL_FRAMES = 100  # Frames per validation clip (as ``lipdub eval``'s default).


def split_speakers(clips: Sequence[Clip], speakers: Sequence[str]) -> tuple[list[Clip], list[Clip]]:
    """(training clips, validation clips): every clip of a named speaker goes to validation.

    Raises:
        ConfigError: a named speaker has no clip, or no clip is left to train on.
    """
    require_speakers(clips, speakers, "--val-speakers")
    wanted = set(speakers)
    train = [c for c in clips if c.speaker not in wanted]
    val = [c for c in clips if c.speaker in wanted]
    if not train:
        raise ConfigError("--val-speakers holds out every speaker: nothing is left to train on")
    return train, val


@dataclass
class _ValClip:
    clip: Clip
    window: EvalWindow
    target_lms: np.ndarray  # (F, 68, 2) dlib on the real crops.
    lmd_copy: float  # The copy-reference baseline does not depend on the model.


class Validator:
    """LMD of a generator on fixed validation clips, with its zeroed-audio and copy baselines."""

    def __init__(
        self,
        clips: Sequence[Clip],
        max_frames: int = VAL_FRAMES,
        detector: DlibFaceDetector | None = None,
        audio_scale: float = 1.0,
    ) -> None:
        self.audio_scale = audio_scale  # As the renderer would run the checkpoint.
        self.detector = detector or DlibFaceDetector("hog")
        self.speakers = sorted({c.speaker for c in clips})
        self.items = []
        for clip in clips:
            win = eval_window(clip, max_frames)
            target_lms = self._landmarks(clip, win.target)
            copy_lms = self._landmarks(clip, copy_reference(clip, win))
            self.items.append(_ValClip(clip, win, target_lms, metrics.lmd(copy_lms, target_lms)))
        log.info(
            "validation: %d clip(s), %d frames, speakers %s",
            len(self.items),
            sum(v.window.frames for v in self.items),
            self.speakers,
        )

    def _landmarks(self, clip: Clip, crops: np.ndarray) -> np.ndarray:
        return metrics.crop_landmarks(self.detector, crops, clip.landmarks[: len(crops)])

    def __call__(self, model: StyleSyncGenerator, device: torch.device) -> dict[str, float]:
        """Mean LMD (model, audio zeroed, copy reference), the model's PSNR, opening bias and
        correlation (:func:`lipdub.eval.metrics.opening`), and the margin."""
        rows: dict[str, list[float]] = {
            k: [] for k in ("LMD", "LMD_zeroed", "LMD_copy", "PSNR", "gap_bias", "gap_r")
        }
        was_training = model.training
        for v in self.items:
            own = render_window(model, v.clip, v.window, v.clip.audio, device, self.audio_scale)
            silent = np.zeros_like(v.clip.audio)
            zero = render_window(model, v.clip, v.window, silent, device, self.audio_scale)
            own_lms = self._landmarks(v.clip, own)
            rows["LMD"].append(metrics.lmd(own_lms, v.target_lms))
            gap_bias, gap_r = metrics.opening(own_lms, v.target_lms)
            rows["gap_bias"].append(gap_bias)
            rows["gap_r"].append(gap_r)
            rows["LMD_zeroed"].append(metrics.lmd(self._landmarks(v.clip, zero), v.target_lms))
            rows["LMD_copy"].append(v.lmd_copy)
            psnrs = [metrics.psnr(a, b) for a, b in zip(own, v.window.target, strict=True)]
            rows["PSNR"].append(float(np.mean(psnrs)))
        model.train(was_training)
        # gap_r is NaN on a clip whose mouth never moves; the mean is over the others.
        out = {
            k: float(np.mean([v for v in vals if np.isfinite(v)] or [np.nan]))
            for k, vals in rows.items()
        }
        out["margin"] = min(out["LMD_zeroed"], out["LMD_copy"]) - out["LMD"]
        return out
