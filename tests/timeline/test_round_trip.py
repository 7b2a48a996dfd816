"""Import -> render -> export on a cut of real footage, as OTIO, CMX 3600 EDL and FCP XML: the
exported cut, read back with OpenTimelineIO, plays every rendered clip from its dubbed file at
the same record position, and keeps the refused clip on its original media with a marker."""

from __future__ import annotations

import shutil
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import opentimelineio as otio
import pytest
import yaml
from click.testing import CliRunner
from opentimelineio.opentime import RationalTime, TimeRange

from lipdub.cli import main
from lipdub.config.plan import load_plan
from lipdub.config.project import default_project
from lipdub.media.read import open_video
from lipdub.timeline.cut import read_cut, record_range
from lipdub.timeline.export import export_cut
from lipdub.timeline.media import VIDEO_SUFFIXES, MediaFinder
from tests.conftest import shared_data

RATE = 25
CLIPS = {  # Reel -> real clip (25 fps, with a face and speech).
    "reelA": "clips/deep_avsr__av_demo_00019.mp4",
    "reelB": "clips/SadTalker__examples_ref_video_WDA_AlexandriaOcasioCortez_000.mp4",
}
LENGTHS = {"reelA": 237, "reelB": 200}  # Their frame counts.
DUB = "audio/dreamtalk__data_audio_German1.wav"


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _clip(name: str, reel: str, start: int, frames: int) -> otio.schema.Clip:
    extent = TimeRange(RationalTime(0, RATE), RationalTime(LENGTHS[reel], RATE))
    ref = otio.schema.ExternalReference(target_url=f"media/{reel}.mp4", available_range=extent)
    return otio.schema.Clip(
        name=name,
        media_reference=ref,
        source_range=TimeRange(RationalTime(start, RATE), RationalTime(frames, RATE)),
    )


def _cut(root: Path) -> otio.schema.Timeline:
    """Three dubbable clips (a dissolve between two), a gap, and a clip at double speed."""
    data = shared_data()
    (root / "media").mkdir()
    for reel, clip in CLIPS.items():
        shutil.copy(data / clip, root / "media" / f"{reel}.mp4")
    timeline = otio.schema.Timeline("reel 1", global_start_time=RationalTime(90_000, RATE))
    video = otio.schema.Track("V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(video)
    video.append(_clip("sh010", "reelA", 10, 40))
    video.append(_clip("sh020", "reelB", 30, 40))
    video.append(
        otio.schema.Transition(
            transition_type=otio.schema.TransitionTypes.SMPTE_Dissolve,
            in_offset=RationalTime(6, RATE),
            out_offset=RationalTime(6, RATE),
        )
    )
    video.append(_clip("sh030", "reelA", 120, 30))
    video.append(otio.schema.Gap(source_range=TimeRange(duration=RationalTime(10, RATE))))
    fast = _clip("sh040", "reelB", 100, 20)
    fast.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    video.append(fast)
    return timeline


def _add_time_remap(xml: Path, clip_name: str, percent: int) -> None:
    """Give the clip item named ``clip_name`` FCP 7's Time Remap filter at ``percent`` speed."""
    tree = ElementTree.parse(xml)
    for item in tree.iter("clipitem"):
        if item.findtext("name") == clip_name:
            filt = ElementTree.SubElement(item, "filter")
            effect = ElementTree.SubElement(filt, "effect")
            for tag, text in (("name", "Time Remap"), ("effectid", "timeremap")):
                ElementTree.SubElement(effect, tag).text = text
            param = ElementTree.SubElement(effect, "parameter")
            for tag, text in (("parameterid", "speed"), ("name", "speed"), ("value", str(percent))):
                ElementTree.SubElement(param, tag).text = text
    tree.write(xml)


@pytest.fixture(scope="module")
def audio_file() -> Path:
    return shared_data() / DUB


@pytest.mark.parametrize("suffix", [".otio", ".edl", ".xml"])
def test_import_render_export_relinks_every_rendered_clip(
    tmp_path: Path, suffix: str, audio_file: Path
):
    root = tmp_path
    cut = root / f"cut{suffix}"
    otio.adapters.write_to_file(
        _cut(root), str(cut), **({"rate": RATE} if suffix == ".edl" else {})
    )
    if suffix == ".xml":  # The adapter writes no retime: add Premiere's, as an editor's XML has.
        _add_time_remap(cut, "sh040", 200)
    (root / "audio").mkdir()
    for n in range(1, 5):
        shutil.copy(audio_file, root / "audio" / f"de_{n}.wav")
    shots = root / "shots.yaml"
    result = invoke(
        "shots", "import", str(cut), "--out", str(shots), "--rate", "25", "--handles", "4",
        "--dub", f"de={root}/audio/de_{{event}}.wav", "--media", str(root / "media"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(shots.read_text())
    ids = [s["id"] for s in data["shots"]]
    assert ids == ["001_sh010", "002_sh020", "003_sh030"]
    assert [r["clip"] for r in data["timeline"]["refused"]] == ["sh040"]
    assert "speed change (200 %)" in data["timeline"]["refused"][0]["reason"]
    assert data["timeline"]["skipped"] == ["1 gap (no picture), skipped"]

    out = root / f"dub{suffix}"
    result = invoke("render", str(shots), "--generator", "passthrough", "--timeline-out", str(out))
    assert result.exit_code == 0, result.output

    before, after = read_cut(cut, RATE), read_cut(out, RATE)
    old = [c for c in before.find_clips()]
    new = [c for c in after.find_clips()]
    assert len(old) == len(new)
    plan = load_plan(shots, default_project(root), {})
    by_clip = {s.timeline["clip"]: s for s in plan.shots}
    for o, n in zip(old, new, strict=True):
        assert record_range(after, n) == record_range(before, o), o.name  # Same place in the cut.
        # Through lipdub's finder: otio-cmx3600-adapter 1.0 reads a dissolve's incoming clip
        # with the outgoing clip's file (the EDL itself names the right one, in `* TO CLIP:`).
        found, how = MediaFinder(root, (), VIDEO_SUFFIXES).find(n)
        assert found is not None, how
        if o.name in by_clip:
            shot = by_clip[o.name]
            assert found == root / "renders" / f"{shot.id}_de.mov", o.name
            # The dubbed file starts at the shot's first frame (handles included): the clip
            # shows the same source frames from it.
            shown = n.trimmed_range()
            first = round(o.trimmed_range().start_time.value) - shot.start
            assert round(shown.start_time.value) == first
            assert round(shown.duration.value) == round(o.trimmed_range().duration.value)
        else:
            assert found == root / "media/reelB.mp4"  # The refused clip keeps its media.
            if suffix == ".otio":
                assert any("speed change" in m.name for m in n.markers)


def test_the_dubbed_file_shows_the_clip_s_frames_where_the_cut_says(tmp_path: Path, audio_file):
    """Decode the exported cut's first clip from the dubbed file and from the source: the same
    picture frame for frame (passthrough), and not the picture one frame off."""
    root = tmp_path
    cut = root / "cut.otio"
    otio.adapters.write_to_file(_cut(root), str(cut))
    shots = root / "shots.yaml"
    (root / "audio").mkdir()
    shutil.copy(audio_file, root / "audio" / "de_1.wav")
    args = ("--dub", f"de={root}/audio/de_{{event}}.wav", "--handles", "5")
    assert invoke("shots", "import", str(cut), "--out", str(shots), *args).exit_code == 0
    out = root / "dub.otio"
    result = invoke("render", str(shots), "--generator", "passthrough", "--timeline-out", str(out))
    assert result.exit_code == 0, result.output
    o = read_cut(cut).find_clips()[0]
    n = read_cut(out).find_clips()[0]
    a, b = round(o.trimmed_range().start_time.value), round(n.trimmed_range().start_time.value)
    dubbed_path = Path(n.media_reference.target_url.removeprefix("file://"))
    with open_video(root / "media/reelA.mp4") as src, open_video(dubbed_path) as dub:
        source = [f.astype(np.float32) for f in src.frames(a - 2, a + 12)]
        dubbed = [f.astype(np.float32) for f in dub.frames(b, b + 10)]
    for k, frame in enumerate(dubbed):
        errors = [np.abs(frame - source[k + 2 + d]).mean() for d in (-2, -1, 0, 1, 2)]
        assert int(np.argmin(errors)) == 2, (k, errors)
    # The same cut handed back as an EDL keeps the reel's record timecode (01:00:00:00 on).
    plan = load_plan(shots, default_project(root), {})
    edl = export_cut(plan.timeline, shots, plan.shots, {}, root / "dub.edl")["de"]
    first = next(line for line in edl.read_text().splitlines() if line.startswith("001"))
    assert first.split()[-2:] == ["01:00:00:00", "01:00:01:15"]  # sh010: 40 frames at 25.


def test_export_marks_failed_shots_and_refuses_a_changed_cut(tmp_path: Path, audio_file):
    root = tmp_path
    cut = root / "cut.otio"
    timeline = _cut(root)
    audio = otio.schema.Track("DE", kind=otio.schema.TrackKind.Audio)
    audio.append(  # The German dub laid under the whole reel, from its first sample.
        otio.schema.Clip(
            name="german",
            media_reference=otio.schema.ExternalReference(target_url=str(audio_file)),
            source_range=TimeRange(RationalTime(0, RATE), RationalTime(250, RATE)),
        )
    )
    timeline.tracks.append(audio)
    otio.adapters.write_to_file(timeline, str(cut))
    shots = root / "shots.yaml"
    result = invoke("shots", "import", str(cut), "--out", str(shots), "--dub-track", "de=DE")
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(shots.read_text())
    # sh020 is at record 40 in the reel: its shot starts 40 frames (1.6 s) into the dub; sh030
    # at 80, but its shot starts with the 6 frames the dissolve shows before its in point.
    offsets = {s["id"]: s["dubs"][0]["offset"] for s in data["shots"]}
    assert offsets == {"001_sh010": 0.0, "002_sh020": -1.6, "003_sh030": -(80 - 6) / RATE}

    plan = load_plan(shots, default_project(root), {})
    out = root / "dub_{dub}.otio"
    written = export_cut(plan.timeline, shots, plan.shots, {"002_sh020": "boom"}, out)
    exported = read_cut(written["de"]).find_clips()
    markers = {c.name: [m.name for m in c.markers] for c in exported}
    assert markers["sh020"] == ["lipdub: not dubbed (de): shot 002_sh020 failed: boom"]
    assert "is not rendered" in markers["sh010"][0]  # Nothing was rendered yet.

    # Someone moved a shot's in point past its clip's first frame after the import: that
    # shot's file no longer holds the clip, so it is marked, not linked to the wrong frames.
    shots.write_text(shots.read_text().replace("in: 00:00:00:10", "in: 00:00:00:15", 1))
    plan = load_plan(shots, default_project(root), {})
    written = export_cut(plan.timeline, shots, plan.shots, {}, root / "edited.otio")
    marks = {c.name: [m.name for m in c.markers] for c in read_cut(written["de"]).find_clips()}
    assert "no longer covers the clip" in marks["sh010"][0]

    cut.write_text(cut.read_text() + "\n")  # Editorial sent a new version of the cut.
    result = invoke("render", str(shots), "--generator", "passthrough", "--timeline-out", "x.otio")
    assert result.exit_code == 2 and "changed since the shots were imported" in result.output
    assert not (root / "renders").exists()  # Refused before the first frame.
