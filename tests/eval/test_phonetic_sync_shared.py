"""QC's phonetic sync on real footage (issue 25): a real talking mouth against its own speech
moved by a known number of frames; the offset moves with it, is warned about when it is
beyond the tolerance, and a silent dub is not measured at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lipdub.analysis.masks import mouth_opening
from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.eval.qc import DubQC, _judge_sync
from lipdub.media.audio import load_audio, loudness_per_frame, to_model_audio
from lipdub.media.read import probe
from lipdub.phonetics.recognizer import default_recognizer
from lipdub.phonetics.track import viseme_track
from tests.conftest import shared_data

pytestmark = [pytest.mark.shared, pytest.mark.slow]

CLIP = "styletalk__samples_source_video_video_andrew_clip_2"  # 256 px, 30 fps, own speech.
FRAMES = 150  # 5 s.


def _qc(opening: np.ndarray, audio: np.ndarray, fps) -> DubQC:
    """QC's sync measure of the real mouth against ``audio`` (as a render computes it)."""
    visemes = viseme_track(audio, fps, FRAMES, default_recognizer())
    qc = DubQC(shot="s", dub="d", output="o.mkv", frames=FRAMES, fps="30/1", generator="g")
    qc.mouth_opening = [None if not np.isfinite(x) else round(float(x), 4) for x in opening]
    _judge_sync(qc, visemes, loudness_per_frame(audio, FRAMES, fps), fps)
    return qc


def test_a_known_shift_of_real_speech_is_found(tmp_path: Path) -> None:
    data = shared_data()
    video = data / "clips" / f"{CLIP}.mp4"
    fps = probe(video).fps
    (track,) = analyze_shot(video, 0, FRAMES, cache_dir=tmp_path / "cache").tracks
    opening = np.full(FRAMES, np.nan)
    opening[track.frames] = [mouth_opening(lm) for lm in track.landmarks]
    speech = to_model_audio(
        load_audio(data / "clips" / f"{CLIP.replace('video_video', 'video_wav')}.wav")
    )
    per_frame = round(16_000 / float(fps))

    def late(frames: int) -> np.ndarray:
        if frames >= 0:
            return np.concatenate([np.zeros(frames * per_frame, np.float32), speech])
        return speech[-frames * per_frame :]

    own = _qc(opening, late(0), fps)
    assert own.av_offset is not None and abs(own.av_offset) <= 1, own
    assert own.sync_r is not None and own.sync_r > 0.2
    assert not [w for w in own.warnings if "lip sync" in w]
    for shift in (-6, 6):
        qc = _qc(opening, late(shift), fps)
        assert qc.av_offset is not None and abs(qc.av_offset - own.av_offset - shift) <= 1, (
            shift,
            qc.av_offset,
        )
        (warning,) = [w for w in qc.warnings if "lip sync" in w]
        assert f"av_offset {qc.av_offset}:" in warning
        assert ("late" if shift > 0 else "early") in warning
    silent = _qc(opening, np.zeros_like(speech), fps)
    assert silent.av_offset is None and silent.sync_r is None and not silent.warnings
