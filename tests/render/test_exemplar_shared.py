"""The exemplar generator on real footage: only the lower face changes, frames and rate are
kept, and a track whose bank is too thin for it keeps the source's frames (or, when asked for,
falls back to stylesync), with a warning in the QC report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.cli import main
from lipdub.eval.qc_checks import DETAIL_WARN
from lipdub.media.read import open_video, probe
from tests.conftest import shared_data
from tests.render.regions import lower_face

pytestmark = [pytest.mark.shared, pytest.mark.slow]

CLIP = "SadTalker__examples_ref_video_WDA_AlexandriaOcasioCortez_000.mp4"  # 512 px, 25 fps.
DUB = "dreamtalk__data_audio_German1.wav"
SPEECH_AT = -0.64  # Dub offset that starts the dub at its first word (0.64 s of silence first).


def project(
    tmp_path: Path, video: Path, dub: Path, first: int, stop: int, offset: float = 0.0
) -> Path:
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\npreset = "draft"\ndevice = "cpu"\n'
        '[stages]\ngenerator = "exemplar"\n'
        '[settings]\ncodec = "ffv1"\ncontainer = ".mkv"\nweights = "random-init"\n'
        'audio_fit = "pad-trim"\n'
    )
    shots = tmp_path / "shots.yaml"
    shots.write_text(
        f"shots:\n  - {{id: s1, source: {video}, in: {first}, out: {stop}, "
        f"dubs: [{{name: de, audio: {dub}, offset: {offset}}}]}}\n"
    )
    return shots


def test_exemplar_changes_only_the_lower_face(tmp_path: Path) -> None:
    data = shared_data()
    video, dub = data / "clips" / CLIP, data / "audio" / DUB
    frames = 60
    shots = project(tmp_path, video, dub, 0, frames)
    res = CliRunner().invoke(main, ["render", str(shots), "--json"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "renders" / "s1_de.mkv"
    src_info, info = probe(video), probe(out)
    assert (info.frame_count, info.fps, info.width, info.height) == (
        frames,
        src_info.fps,
        src_info.width,
        src_info.height,
    )
    record = json.loads((tmp_path / "renders" / ".qc" / "s1_de.mkv.json").read_text())
    assert record["generator"] == "exemplar"
    assert not any("fallback" in w for w in record["warnings"])
    # Real pixels of the actor: QC does not call the lips soft (their own Laplacian energy,
    # output / source; exemplar renders of this clip measure 0.61–0.72, the demo's painted
    # mouth 0.15).
    assert record["detail_ratio"] is not None and record["detail_ratio"] >= DETAIL_WARN

    analysis = analyze_shot(video, 0, frames, cache_dir=tmp_path / ".lipdub" / "cache")
    (track,) = analysis.tracks
    changed = 0
    with open_video(video) as a, open_video(out) as b:
        for i, (before, after) in enumerate(zip(a.frames(0, frames), b.frames(), strict=True)):
            inside = lower_face(track.landmarks[track.at(i)], before.shape)
            assert np.array_equal(after[~inside], before[~inside]), f"frame {i}"
            changed += int(not np.array_equal(after[inside], before[inside]))
    assert changed >= frames // 2  # The dub reached the picture (some frames rest on silence).


def test_a_thin_bank_keeps_the_source_and_says_so(tmp_path: Path) -> None:
    """By default a track too thin for the exemplar path is not painted by the research-only
    stylesync: its frames are the source's, the warning names the track, why and the option,
    and QC lists the track as not dubbed."""
    data = shared_data()
    video, dub = data / "clips" / CLIP, data / "audio" / DUB
    shots = project(tmp_path, video, dub, 20, 32, SPEECH_AT)  # 12 frames: < min_frames.
    res = CliRunner().invoke(main, ["render", str(shots), "--json"])
    assert res.exit_code == 0, res.output
    events = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    (thin,) = [w for w in warnings if "too thin for the exemplar path" in w]
    assert "track 0 (" in thin and "NOT dubbed" in thin and 'fallback = "stylesync"' in thin
    record = json.loads((tmp_path / "renders" / ".qc" / "s1_de.mkv.json").read_text())
    assert [t["track"] for t in record["not_dubbed"]] == [0] and record["not_dubbed"][0]["reason"]
    assert record["generator"] == "exemplar" and thin in record["warnings"]
    page = (tmp_path / "renders" / "lipdub-qc.html").read_text()
    assert "(NOT dubbed)</th><td>track 0 (" in page
    out = tmp_path / "renders" / "s1_de.mkv"
    (track,) = analyze_shot(video, 20, 32, cache_dir=tmp_path / ".lipdub" / "cache").tracks
    with open_video(video) as a, open_video(out) as b:
        pairs = list(zip(a.frames(20, 32), b.frames(), strict=True))
    assert len(pairs) == 12
    for i, (before, after) in enumerate(pairs):
        inside = lower_face(track.landmarks[track.at(i)], before.shape)
        assert np.array_equal(after[inside], before[inside]), f"frame {i}: the mouth changed"
        assert np.array_equal(after, before), f"frame {i}"


def test_a_thin_bank_falls_back_to_stylesync_when_asked_and_says_so(tmp_path: Path) -> None:
    data = shared_data()
    video, dub = data / "clips" / CLIP, data / "audio" / DUB
    shots = project(tmp_path, video, dub, 20, 32, SPEECH_AT)  # 12 frames: < min_frames.
    with (tmp_path / "lipdub.toml").open("a") as f:
        f.write('fallback = "stylesync"\n')  # In [settings], the file's last table.
    res = CliRunner().invoke(main, ["render", str(shots), "--json"])
    assert res.exit_code == 0, res.output
    events = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    assert any("too thin for the exemplar path" in w for w in warnings), warnings
    record = json.loads((tmp_path / "renders" / ".qc" / "s1_de.mkv.json").read_text())
    (fell,) = [w for w in record["warnings"] if "fallback generator" in w]
    assert "research-only" in fell and record["not_dubbed"] == []
    assert record["generator"] == "stylesync"  # What made the face, not what was asked for.
    # Every warning of the QC report reached the events and the finished event's report too.
    (finished,) = [e for e in events if e["event"] == "finished"]
    for w in record["warnings"]:
        assert w in warnings or f"de: {w}" in warnings, w
        assert w in finished["data"]["warnings"] or f"de: {w}" in finished["data"]["warnings"]
    assert probe(tmp_path / "renders" / "s1_de.mkv").frame_count == 12


def test_personalize_stores_a_bank_that_renders_draw_on(tmp_path: Path) -> None:
    """The 12-frame shot is too thin on its own; with the actor's footage banked by
    `lipdub personalize --bank-only --shots`, the exemplar path serves it (the shot's own part is
    not counted twice)."""
    data = shared_data()
    video, dub = data / "clips" / CLIP, data / "audio" / DUB
    shots = project(tmp_path, video, dub, 20, 32, SPEECH_AT)  # Speech on every frame.
    with (tmp_path / "lipdub.toml").open("a") as f:
        f.write(f'[actors.aoc]\nfootage = ["{video}"]\n')
    shots.write_text(shots.read_text().replace("dubs:", "actors: [aoc], dubs:"))
    args = ["personalize", "--actor", "aoc", "--bank-only", "--shots", str(shots), "--json"]
    res = CliRunner().invoke(main, [*args, "--project", str(tmp_path)])
    assert res.exit_code == 0, res.output
    bank = json.loads([x for x in res.output.splitlines() if '"event": "bank"' in x][-1])
    # The footage clip and the shot that lists the actor, each one part.
    assert bank["parts"] == 2 and bank["usable_frames"] > 100
    parts = sorted((tmp_path / "actors" / "aoc" / "bank").glob("*/*/part.json"))
    assert [p.parent.parent.name for p in parts] == [f"00-{video.stem}", "01-s1"]
    res = CliRunner().invoke(main, ["render", str(shots), "--json"])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "renders" / ".qc" / "s1_de.mkv.json").read_text())
    assert record["generator"] == "exemplar"
    assert not any("fallback" in w for w in record["warnings"]), record["warnings"]
    assert record["detail_ratio"] is not None and record["detail_ratio"] >= DETAIL_WARN
