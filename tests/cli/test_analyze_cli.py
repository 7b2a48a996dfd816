"""``lipdub analyze`` on real footage: tracks, actor names, cuts with timecodes, debug overlay."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.media.audio import save_wav
from lipdub.media.read import open_video, probe
from lipdub.media.write import VideoWriter, codec_for
from tests.conftest import shared_data, tone

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def test_one_clip_with_overlay(tmp_path: Path):
    clip = shared_data() / "clips" / "deep_avsr__av_demo_00019.mp4"
    overlay = tmp_path / "overlay.mp4"
    res = CliRunner().invoke(
        main, ["analyze", "--video", str(clip), "--overlay", str(overlay), "--json"]
    )
    assert res.exit_code == 0, res.output
    record = json.loads(res.output.strip().splitlines()[-1])
    assert record["coverage"] >= 0.98
    assert len(record["tracks"]) == 1 and record["tracks"][0]["actor"] == "unknown"
    assert probe(overlay).frame_count == probe(clip).frame_count
    assert (tmp_path / "overlay.png").is_file()


def test_range_auto_splits_a_reel_at_its_cut(tmp_path: Path):
    data = shared_data() / "clips"
    a = data / "Talking-Face_PC-AVS__misc_Input_00098.mp4"
    b = data / "Talking-Face_PC-AVS__misc_Input_00002.mp4"
    with open_video(a) as va, open_video(b) as vb:
        frames = [*va.frames(0, 30), *vb.frames(0, 30)]
    reel = tmp_path / "reel.mov"
    with VideoWriter(reel, 224, 224, Fraction(25), codec_for("h264", reel), "01:00:00:00") as w:
        for f in frames:
            w.write(np.ascontiguousarray(f))
    save_wav(tone(1.2), tmp_path / "d.wav")
    (tmp_path / "shots.yaml").write_text(
        "shots:\n  - {id: r, source: reel.mov, range: auto, dubs: [{name: de, audio: d.wav}]}\n"
    )
    res = CliRunner().invoke(main, ["analyze", str(tmp_path / "shots.yaml"), "--cuts", "--json"])
    assert res.exit_code == 0, res.output
    records = [json.loads(x) for x in res.output.strip().splitlines()]
    assert [r["shot"] for r in records] == ["r.1", "r.2"]
    bounds = [(r["in"], r["out"]) for r in records]
    assert len(bounds) == 2 and abs(bounds[0][1] - 30) <= 1 and bounds[1][1] == 60
    listing = CliRunner().invoke(main, ["render", str(tmp_path / "shots.yaml"), "--list", "--json"])
    jobs = [json.loads(x) for x in listing.output.strip().splitlines()]
    assert [j["id"] for j in jobs] == ["r.1", "r.2"]
    assert jobs[0]["outputs"][0].endswith("r.1_de.mov")
