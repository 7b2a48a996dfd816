"""QC's phonetic sync on real footage (issue 25): a real talking mouth against its own speech
moved by a known number of frames; the offset moves with it, is warned about when it is
beyond the tolerance, a silent dub is not measured at all, and an unrelated dub in five
containers is warned about in none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lipdub.analysis.masks import mouth_opening
from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.eval.qc import DubQC, _judge_sync
from lipdub.media.audio import load_audio, loudness_per_frame, resample, to_model_audio
from lipdub.media.read import probe
from lipdub.phonetics.recognizer import default_recognizer
from lipdub.phonetics.track import viseme_track
from tests.conftest import shared_data
from tests.eval.test_qc_offset_shared import CONTAINERS, RATE
from tests.media.encode import encode_mono
from tests.render.test_exemplar_shared import CLIP as AOC
from tests.render.test_exemplar_shared import DUB

pytestmark = [pytest.mark.shared, pytest.mark.slow]

CLIP = "styletalk__samples_source_video_video_andrew_clip_2"  # 256 px, 30 fps, own speech.
FRAMES = 150  # 5 s.


def _qc(opening: np.ndarray, audio: np.ndarray, fps) -> DubQC:
    """QC's sync measure of the real mouth against ``audio`` (as a render computes it)."""
    n = len(opening)
    visemes = viseme_track(audio, fps, n, default_recognizer())
    qc = DubQC(shot="s", dub="d", output="o.mkv", frames=n, fps=str(fps), generator="g")
    qc.mouth_opening = [None if not np.isfinite(x) else round(float(x), 4) for x in opening]
    _judge_sync(qc, visemes, loudness_per_frame(audio, n, fps), fps)
    return qc


def _opening(video: Path, frames: int, cache: Path) -> np.ndarray:
    """The real mouth's inner-lip gap per frame (NaN where no face is tracked)."""
    (track,) = analyze_shot(video, 0, frames, cache_dir=cache).tracks
    opening = np.full(frames, np.nan)
    opening[track.frames] = [mouth_opening(lm) for lm in track.landmarks]
    return opening


def test_a_known_shift_of_real_speech_is_found(tmp_path: Path) -> None:
    data = shared_data()
    video = data / "clips" / f"{CLIP}.mp4"
    fps = probe(video).fps
    opening = _opening(video, FRAMES, tmp_path / "cache")
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


def test_the_same_dub_in_five_containers_raises_no_offset_warning(tmp_path: Path) -> None:
    """Issue 27: the same 3 s of German gave −9 to +3 frames by its container alone, each a
    warning. The phonetic measure, on the aoc clip's real mouth, warns in none."""
    data = shared_data()
    video = data / "clips" / AOC
    fps = probe(video).fps
    opening = _opening(video, 75, tmp_path / "cache")
    german = resample(load_audio(data / "audio" / DUB), RATE, mono=True).samples[0]
    german = german[int(0.64 * RATE) : int(3.64 * RATE)]  # 3 s from the first word.
    offsets = []
    for suffix, codec in CONTAINERS:
        path = tmp_path / f"de.{suffix}"
        encode_mono(path, codec, german, RATE)
        qc = _qc(opening, to_model_audio(load_audio(path)), fps)
        assert qc.speech_frames is not None and qc.speech_frames >= 10  # It is speech.
        assert not [w for w in qc.warnings if "lip sync" in w], (suffix, qc)
        offsets.append(qc.av_offset)
    assert None not in offsets  # Measured every time.
