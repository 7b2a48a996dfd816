"""Audio/video offsets of prepared clips, measured with a trained SyncNet.

The offset of a clip is syncnet_python's: the shift o ∈ [−15, 15] frames minimising the mean
distance between the visual embedding of frames t−2..t+2 and the audio embedding at t + o
(:func:`lipdub.eval.sync_scoring.av_sync`). It is stored in the clip's ``info.json`` with its
confidence (LSE-C); the datasets apply it (shift the audio by o) only when ``offset_applied`` is
set, i.e. the confidence reached ``min_confidence``, since a weak SyncNet's guess would do more
harm than the offset itself. LSE-C here is on lipdub's SyncNet scale (unit embeddings, distances
in [0, 2]), not syncnet_python's, so :data:`MIN_CONFIDENCE` is small.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lipdub.data.clips import load_clips
from lipdub.data.prepare import update_info, write_index
from lipdub.eval.sync_scoring import SyncNetScorer, av_sync
from lipdub.model.mel import MelFrontend
from lipdub.model.syncnet import SyncNet

log = logging.getLogger(__name__)

MIN_CONFIDENCE = 0.03  # LSE-C (median − min distance) needed before an offset is applied.


def estimate_offsets(
    data_dir: Path,
    net: SyncNet,
    device: str = "cpu",
    clip_ids: set[str] | None = None,
    method: str = "syncnet",
    min_confidence: float = MIN_CONFIDENCE,
) -> dict[str, dict[str, Any]]:
    """Measure and store the AV offset of every prepared clip (or those in ``clip_ids``).

    Returns:
        clip id → {"offset_frames", "offset_confidence", "lse_d"}.
    """
    scorer = SyncNetScorer(net, device)
    mel = MelFrontend(net.cfg.mel)
    found: dict[str, dict[str, Any]] = {}
    for clip in load_clips(data_dir):
        if clip_ids is not None and clip.clip_id not in clip_ids:
            continue
        # clip.frames are the video's own numbers: any offset stored before is not applied here.
        res = av_sync(scorer, clip.crops, clip.audio, clip.fps, clip.frames, mel)
        rec = {
            "offset_frames": res.offset,
            "offset_confidence": round(res.lse_c, 4),
            "lse_d": round(res.lse_d, 4),
            "offset_applied": bool(res.lse_c >= min_confidence),
        }
        update_info(Path(data_dir) / clip.clip_id, offset_method=method, **rec)
        found[clip.clip_id] = rec
        log.info("%s: offset %+d frames (LSE-C %.3f)", clip.clip_id, res.offset, res.lse_c)
    write_index(data_dir)
    return found
