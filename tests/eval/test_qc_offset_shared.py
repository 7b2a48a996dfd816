"""QC's SyncNet AV offset on real footage (issue 27; QC uses SyncNet only with ``qc_syncnet``):
the same 3 s of German in five containers and a silent dub raise no offset warning; the actor's
own speech moved by 6 frames does.

Before: every one of these warned ("lip sync looks 4 frames off" for the German in every
container, "15 frames off" for silence), and the shifted own speech was among them unnoticed.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.eval.qc import LOUD_DB, DubQC, _aligned, _measure_sync, default_syncnet
from lipdub.media.audio import load_audio, loudness_per_frame, resample, to_model_audio
from lipdub.media.read import open_video
from tests.conftest import shared_data
from tests.media.encode import encode_mono
from tests.render.test_exemplar_shared import CLIP, DUB

pytestmark = [pytest.mark.shared, pytest.mark.slow]

FRAMES = 75  # 3 s at 25 fps.
FPS = Fraction(25)
RATE = 48_000
CONTAINERS = [
    ("wav", "pcm_s16le"),
    ("flac", "flac"),
    ("mp3", "libmp3lame"),
    ("m4a", "aac"),
    ("opus", "libopus"),
]


def _offset_warnings(syncnet, crops, frames, audio: np.ndarray) -> tuple[DubQC, list[str]]:
    qc = DubQC(shot="s1", dub="de", output="x.mkv", frames=FRAMES, fps="25/1", generator="g")
    loud = loudness_per_frame(audio, FRAMES, FPS)
    speech = int((loud >= LOUD_DB).sum())
    _measure_sync(qc, syncnet, crops, audio, frames, FPS, speech)
    qc.speech_frames = speech
    return qc, [w for w in qc.warnings if "lip sync" in w]


def test_offset_warnings_follow_the_picture_not_the_container(tmp_path: Path) -> None:
    data = shared_data()
    syncnet = default_syncnet()
    if syncnet is None:
        pytest.skip("no default_syncnet in weights/manifest.toml")
    video = data / "clips" / CLIP
    (track,) = analyze_shot(video, 0, FRAMES, cache_dir=tmp_path / "cache").tracks
    with open_video(video) as v:
        crops = np.stack(
            [_aligned(f, track.landmarks[track.at(i)]) for i, f in enumerate(v.frames(0, FRAMES))]
        )
    german = resample(load_audio(data / "audio" / DUB), RATE, mono=True).samples[0]
    german = german[int(0.64 * RATE) : int(3.64 * RATE)]  # 3 s from the first word.
    for suffix, codec in CONTAINERS:
        path = tmp_path / f"de.{suffix}"
        encode_mono(path, codec, german, RATE)
        qc, warned = _offset_warnings(
            syncnet, crops, track.frames, to_model_audio(load_audio(path))
        )
        assert qc.speech_frames is not None and qc.speech_frames >= 10  # It is speech.
        assert not warned, f"{suffix}: {warned}"
    silent = np.zeros(3 * 16_000, np.float32)
    qc, warned = _offset_warnings(syncnet, crops, track.frames, silent)
    assert not warned and qc.syncnet_offset_peak == 0.0
    # The clip's own speech, 6 frames late: a real offset, and it is reported.
    own = to_model_audio(load_audio(video))
    late = np.concatenate([np.zeros(6 * 640, np.float32), own])  # 640 samples a frame.
    qc, warned = _offset_warnings(syncnet, crops, track.frames, late)
    assert warned, (qc.syncnet_offset, qc.syncnet_offset_peak)
    assert qc.syncnet_offset is not None and qc.syncnet_offset > 2
