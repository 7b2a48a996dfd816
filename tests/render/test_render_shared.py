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
from lipdub.analysis.pipeline import analyze_shot
from lipdub.cli import main
from lipdub.media.audio import load_audio
from lipdub.media.read import open_video, probe
from lipdub.model.checkpoint import load_manifest
from lipdub.render.faces import FEATHER_FRACTION
from tests.conftest import shared_data

pytestmark = [pytest.mark.shared, pytest.mark.slow]

FRAMES = 30
LITE = 128  # The draft preset's lite generator works at 128×128.


def test_render_changes_only_pixels_inside_the_mask(tmp_path: Path):
    data = shared_data()
    video = data / "clips" / "deep_avsr__av_demo_00019.mp4"
    dub = data / "audio" / "dreamtalk__data_audio_french1.wav"
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\npreset = "draft"\ndevice = "cpu"\n'
        '[settings]\ncodec = "ffv1"\ncontainer = ".mkv"\nweights = "random-init"\n'
        'audio_fit = "pad-trim"\n'
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
    if load_manifest().default_syncnet is not None:  # The bundled SyncNet measures the sync.
        assert record["syncnet"] == load_manifest().default_syncnet
        assert record["lse_c"] >= 0 and -15 <= record["av_offset"] <= 15
    else:
        assert any("LSE-C" in w for w in record["warnings"])

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
            feather = FEATHER_FRACTION * LITE / scale_of(m)
            mask = np.zeros(before.shape[:2], np.float32)
            x0, y0, x1, y1 = box
            mask[y0:y1, x0:x1] = planner.blend_mask(crop_mask, m, box, feather)
            outside = mask == 0
            assert np.array_equal(after[outside], before[outside]), f"frame {i}"
            changed_inside += int((after[~outside] != before[~outside]).any())
    assert changed_inside == FRAMES  # The generator's output did land in every frame.
