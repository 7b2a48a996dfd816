"""The real pipeline on real footage: StyleSync (untrained, same compute) through paste-back.

What is checked here does not depend on trained weights: frame count and rate, the dub's length,
that only pixels inside the blend mask change (lossless FFV1 output), and the QC report.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lipdub.analysis.align import (
    paste_region,
    scale_of,
    similarity_to_template,
    transform_points,
)
from lipdub.analysis.masks import UShapePlanner
from lipdub.analysis.rest import plan_rest
from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.cli import main
from lipdub.config.settings import Settings
from lipdub.media.audio import Audio, load_audio, save_wav
from lipdub.media.read import open_video, probe
from tests.conftest import shared_data
from tests.render.regions import lower_face

pytestmark = [pytest.mark.shared, pytest.mark.slow]

FRAMES = 30
LITE = 128  # The draft preset's lite generator works at 128×128.


def test_render_changes_only_pixels_inside_the_mask(tmp_path: Path):
    data = shared_data()
    video = data / "clips" / "deep_avsr__av_demo_00019.mp4"
    dub = data / "audio" / "dreamtalk__data_audio_french1.wav"
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\npreset = "draft"\ndevice = "cpu"\n'
        '[stages]\ngenerator = "stylesync"\n'
        '[settings]\ncodec = "ffv1"\ncontainer = ".mkv"\nweights = "random-init"\n'
        'audio_fit = "pad-trim"\nrest_on_silence = false\n'  # Every frame generated.
    )
    (tmp_path / "shots.yaml").write_text(
        f"shots:\n  - {{id: s1, source: {video}, in: 10, out: {10 + FRAMES}, "
        f"dubs: [{{name: fr, audio: {dub}}}]}}\n"
    )
    res = CliRunner().invoke(main, ["render", str(tmp_path / "shots.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "renders" / "s1_fr.mkv"
    src_info, info = probe(video), probe(out)
    assert (info.frame_count, info.fps, info.width) == (FRAMES, src_info.fps, src_info.width)
    audio = load_audio(out)
    assert abs(audio.duration_s - FRAMES / float(src_info.fps)) < 2 / audio.rate
    page = (tmp_path / "renders" / "lipdub-qc.html").read_text()
    assert "s1 — fr" in page and "seam" in page
    record = json.loads((tmp_path / "renders" / ".qc" / "s1_fr.mkv.json").read_text())
    assert record["seam_ratio"] is not None and record["seam_ratio"] > 0
    assert len(record["mouth_opening"]) == FRAMES
    # The default QC measures no LSE-C: SyncNet's weights are research-only (qc_syncnet).
    assert record["syncnet"] is None and record["lse_c"] is None
    assert not any("LSE-C" in w for w in record["warnings"])

    analysis = analyze_shot(video, 10, 10 + FRAMES, cache_dir=tmp_path / ".lipdub" / "cache")
    (track,) = analysis.tracks
    planner = UShapePlanner()
    with open_video(video) as a, open_video(out) as b:
        pairs = zip(a.frames(10, 10 + FRAMES), b.frames(), strict=True)
        changed_inside = 0
        for i, (before, after) in enumerate(pairs):
            j = track.at(i)
            assert j is not None
            m = similarity_to_template(track.landmarks[j], LITE)
            box = paste_region(m, LITE, before.shape)
            crop_mask = planner.plan(transform_points(m, track.landmarks[j]), LITE)
            feather = Settings.feather_fraction * LITE / scale_of(m)
            mask = np.zeros(before.shape[:2], np.float32)
            x0, y0, x1, y1 = box
            mask[y0:y1, x0:x1] = planner.blend_mask(crop_mask, m, box, feather)
            outside = mask == 0
            assert np.array_equal(after[outside], before[outside]), f"frame {i}"
            # And the mask itself stays on the lower face: what a passthrough render gives
            # everywhere else (no blend spilling onto the eyes, cheeks or background).
            face = lower_face(track.landmarks[j], before.shape)
            assert np.array_equal(after[~face], before[~face]), f"frame {i}"
            changed_inside += int((after[~outside] != before[~outside]).any())
    assert changed_inside == FRAMES  # The generator's output did land in every frame.


def test_a_silent_dub_rests_the_mouth_source_where_closed_rest_crop_where_open(tmp_path: Path):
    """A dub that is silent all through the shot: every frame rests. Frames where the actor's
    mouth is closed in the source are the source, bit for bit; the others get the rest crop."""
    video = shared_data() / "clips" / "deep_avsr__av_demo_00019.mp4"
    silence = tmp_path / "silence.wav"
    save_wav(Audio(np.zeros((1, 16_000 * 2), np.float32), 16_000), silence)
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\npreset = "draft"\ndevice = "cpu"\n'
        '[stages]\ngenerator = "stylesync"\n'
        '[settings]\ncodec = "ffv1"\ncontainer = ".mkv"\nweights = "random-init"\n'
        'audio_fit = "pad-trim"\n'
    )
    (tmp_path / "shots.yaml").write_text(
        f"shots:\n  - {{id: s1, source: {video}, in: 10, out: {10 + FRAMES}, "
        f"dubs: [{{name: x, audio: {silence}}}]}}\n"
    )
    res = CliRunner().invoke(main, ["render", str(tmp_path / "shots.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "renders" / ".qc" / "s1_x.mkv.json").read_text())
    counts = record["resting"]
    assert counts["source_frames"] + counts["rest_frames"] == FRAMES

    analysis = analyze_shot(video, 10, 10 + FRAMES, cache_dir=tmp_path / ".lipdub" / "cache")
    (track,) = analysis.tracks
    plan = plan_rest(np.full(FRAMES, -120.0), track.landmarks, probe(video).fps)
    assert int((plan.source >= 0.5).sum()) == counts["source_frames"]
    with open_video(video) as a, open_video(tmp_path / "renders" / "s1_x.mkv") as b:
        for i, (before, after) in enumerate(
            zip(a.frames(10, 10 + FRAMES), b.frames(), strict=True)
        ):
            kept = plan.source[track.at(i)] == 1
            assert np.array_equal(after, before) == kept, f"frame {i}"
