"""`lipdub shots import` on CMX 3600 EDLs as editorial sends them: drop-frame 29.97 and
23.976, a dissolve, a speed change, a missing reel and a clip outside its media, each refused
with its event and clip named while the rest of the cut is imported."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.config.plan import load_plan
from lipdub.config.project import default_project
from lipdub.config.timecode import parse_timecode
from lipdub.media.audio import load_audio, samples_for_frames, save_wav
from lipdub.media.read import open_video
from lipdub.render.shot_audio import dub_audio
from lipdub.timeline.cut import parse_rate, read_cut, record_range
from lipdub.timeline.export import export_cut
from tests.conftest import make_video, read_counter, tone

NTSC = Fraction(30000, 1001)
FILM = Fraction(24000, 1001)

DF_EDL = """\
TITLE: DUB TEST DF
FCM: DROP FRAME

001  REEL_A   V     C        01:01:00;02 01:01:01;02 01:00:00;00 01:00:01;00
* FROM CLIP NAME: sh010
002  REEL_A   V     C        01:01:02;00 01:01:02;20 01:00:01;00 01:00:01;10
M2   REEL_A       059.9                01:01:02;00
* FROM CLIP NAME: sh020_fast
003  REEL_X   V     C        01:00:00;00 01:00:00;10 01:00:01;10 01:00:01;20
* FROM CLIP NAME: sh030_nomedia
004  REEL_A   V     C        01:10:00;00 01:10:00;10 01:00:01;20 01:00:02;00
* FROM CLIP NAME: sh040_outside
005  REEL_A   V     C        01:01:04;00 01:01:05;00 01:00:02;00 01:00:03;00
* FROM CLIP NAME: sh050
006  REEL_A   V     C        01:01:05;00 01:01:05;00 01:00:03;00 01:00:03;00
006  REEL_B   V     D    010 01:00:11;00 01:00:12;00 01:00:03;00 01:00:04;00
* FROM CLIP NAME: sh050
* TO CLIP NAME: sh060
"""

FILM_EDL = """\
TITLE: DUB TEST 23976
FCM: NON-DROP FRAME

001  REEL_C   V     C        10:00:01:00 10:00:02:00 01:00:00:00 01:00:01:00
* FROM CLIP NAME: sh100
002  REEL_C   V     C        10:00:03:12 10:00:04:00 01:00:01:00 01:00:01:12
* FROM CLIP NAME: sh110
"""


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def import_edl(root: Path, out: Path, media: Path, *options: str, pattern: str = "audio/{id}"):
    """`lipdub shots import ROOT/cut.edl` with media from ``media`` and dubs ROOT/PATTERN.wav."""
    return invoke(
        "shots", "import", str(root / "cut.edl"), "--out", str(out), "--media", str(media),
        "--dub", f"de={root}/{pattern}.wav", *options,
    )  # fmt: skip


def _project(tmp_path: Path) -> tuple[Path, Path]:
    media = tmp_path / "media"
    media.mkdir()
    # REEL_A's timecode crosses a minute, where drop-frame skips the labels ;00 and ;01.
    make_video(media / "REEL_A.mov", 300, NTSC, timecode="01:00:59;00")
    make_video(media / "REEL_B.mov", 120, NTSC, timecode="01:00:10;00")
    make_video(media / "REEL_C.mov", 120, FILM, timecode="10:00:00:00")
    (tmp_path / "audio").mkdir()
    for sid in ("001_sh010", "005_sh050", "006_sh060", "001_sh100", "002_sh110"):
        save_wav(tone(2.0), tmp_path / "audio" / f"{sid}.wav")
    return tmp_path, media


def _frames(shots: Path) -> dict[str, tuple[int, int]]:
    plan = load_plan(shots, default_project(shots.parent), {})
    return {s.id: (s.start, s.stop) for s in plan.shots}


def test_drop_frame_edl_imports_the_good_clips_and_names_each_refused_event(tmp_path: Path):
    root, media = _project(tmp_path)
    (root / "cut.edl").write_text(DF_EDL)
    out = root / "shots.yaml"
    result = import_edl(root, out, media)
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(out.read_text())
    assert data["timeline"]["rate"] == "30000/1001"  # From the media: the EDL does not say.
    refused = {r["event"]: (r["clip"], r["reason"]) for r in data["timeline"]["refused"]}
    assert refused[2][0] == "sh020_fast" and "speed change (200 %)" in refused[2][1]
    assert refused[3][0] == "sh030_nomedia" and "media not found" in refused[3][1]
    assert "REEL_X" in refused[3][1]
    assert refused[4][0] == "sh040_outside" and "outside its media" in refused[4][1]
    assert set(refused) == {2, 3, 4}
    for event, (clip, _) in refused.items():  # The user is told each one by event and name.
        assert f"event {event} (clip '{clip}')" in result.output
    frames = _frames(out)
    # 01:01:00;02 is the 30th frame after 01:00:59;00 (;00 and ;01 do not exist at minute 1).
    assert frames["001_sh010"] == (30, 60)
    # The dissolve's outgoing side keeps the 10 frames the dissolve shows after its out point;
    # the incoming side starts at its in point (the EDL's dissolve starts at the cut).
    # 01:01:04;00 = 30 + 28 (second 0 of minute 1 has labels ;02-;29 only) + 3 * 30 = 148.
    assert frames["005_sh050"] == (148, 148 + 30 + 10)
    assert frames["006_sh060"] == (30, 60)
    shots = {s["id"]: s for s in data["shots"]}
    assert shots["005_sh050"]["timeline"]["tail"] == 10
    assert shots["006_sh060"]["timeline"]["record_in"] == "01:00:03;00"
    assert shots["006_sh060"]["source"] == "media/REEL_B.mov"  # The reel, not the A side's.
    # Handed back as FCP XML (nothing rendered yet), every clip keeps its record timecode.
    plan = load_plan(out, default_project(root), {})
    xml = export_cut(plan.timeline, out, plan.shots, {}, root / "dub.xml")["de"]
    before, after = read_cut(root / "cut.edl", NTSC), read_cut(xml)
    records = [record_range(after, c) for c in after.find_clips()]
    assert records == [record_range(before, c) for c in before.find_clips()]
    assert records[0][0] == parse_timecode("01:00:00;00", NTSC)


def test_a_23976_edl_counts_24_labels_per_second(tmp_path: Path):
    root, media = _project(tmp_path)
    (root / "cut.edl").write_text(FILM_EDL)
    out = root / "shots.yaml"
    result = import_edl(root, out, media, "--rate", "23.976", "--handles", "6", "--actor", "2=anna")
    assert result.exit_code == 0, result.output
    actors = {s["id"]: s.get("actors") for s in yaml.safe_load(out.read_text())["shots"]}
    assert actors == {"001_sh100": None, "002_sh110": ["anna"]}  # Event 2 only; 1 matches all.
    out.unlink()
    result = import_edl(root, out, media, "--rate", "23.976", "--handles", "30")
    assert "handles shortened to the media: 24 before, 30 after" in result.output
    out.unlink()
    result = import_edl(root, out, media, "--rate", "23.976", "--handles", "6")
    frames = _frames(out)
    assert frames["001_sh100"] == (24 - 6, 48 + 6)
    assert frames["002_sh110"] == (3 * 24 + 12 - 6, 4 * 24 + 6)
    # The planned frames are the media's own: the counter drawn into them says so.
    with open_video(media / "REEL_C.mov") as src:
        first = next(iter(src.frames(18, 19)))
    assert read_counter(first) == 18


def test_an_edl_at_the_wrong_rate_or_without_one_is_refused(tmp_path: Path):
    root, media = _project(tmp_path)
    (root / "cut.edl").write_text(FILM_EDL)
    args = ("shots", "import", str(root / "cut.edl"), "--out", str(root / "s.yaml"))
    dub = ("--dub", f"de={root}/audio/{{id}}.wav")
    result = invoke(*args, *dub)  # No --rate and no media to learn it from.
    assert result.exit_code == 2 and "give --rate" in result.output
    (root / "other").mkdir()
    make_video(root / "other" / "REEL_C.mov", 120, Fraction(25))  # A 25 fps file of that reel.
    result = invoke(*args, *dub, "--media", str(media), "--media", str(root / "other"))
    assert result.exit_code == 2 and "do not tell" in result.output
    result = invoke(*args, *dub, "--media", str(media), "--rate", "25")
    assert result.exit_code == 2  # Its labels do not add up at 25 fps: the adapter says where.
    assert "cut.edl: cannot read the cut" in result.output and "sh110" in result.output
    (root / "cut.edl").write_text(FILM_EDL.split("002")[0])  # Only event 001, which does.
    result = invoke(*args, *dub, "--media", str(media), "--rate", "25")
    assert result.exit_code == 2  # Its one clip plays 23.976 media at 25: not a shot.
    assert "runs at 23.976 fps" in result.output


def test_an_existing_shots_file_is_not_overwritten_without_force(tmp_path: Path):
    root, media = _project(tmp_path)
    (root / "cut.edl").write_text(FILM_EDL)
    out = root / "shots.yaml"
    out.write_text("keep me")
    args = ("shots", "import", str(root / "cut.edl"), "--out", str(out), "--media", str(media))
    result = invoke(*args, "--rate", "23.976", "--dub", f"de={root}/audio/{{id}}.wav")
    assert result.exit_code == 2 and "--force" in result.output
    assert out.read_text() == "keep me"


def test_render_given_a_cut_says_to_import_it(tmp_path: Path):
    (tmp_path / "cut.edl").write_text(FILM_EDL)
    result = invoke("render", str(tmp_path / "cut.edl"))
    assert result.exit_code == 2 and "lipdub shots import" in result.output


CAMERA_EDL = """\
TITLE: CAMERA REELS

001  A001C003 V     C        14:20:11:00 14:20:12:00 01:00:00:00 01:00:01:00
* FROM CLIP NAME: sh200
"""


def test_a_cut_short_reel_finds_the_camera_file_that_holds_its_timecode(tmp_path: Path):
    media = tmp_path / "camera"
    media.mkdir()  # Two files of the reel; only the second runs through 14:20:11:00.
    make_video(media / "A001C003_220101_R1AB.mov", 50, Fraction(25), timecode="14:19:00:00")
    make_video(media / "A001C003_220101_R1AC.mov", 100, Fraction(25), timecode="14:20:10:00")
    save_wav(tone(1.0), tmp_path / "001_sh200.wav")
    (tmp_path / "cut.edl").write_text(CAMERA_EDL)
    out = tmp_path / "shots.yaml"
    result = import_edl(tmp_path, out, media, pattern="{id}")
    assert result.exit_code == 0, result.output
    shot = yaml.safe_load(out.read_text())["shots"][0]
    assert shot["source"] == "camera/A001C003_220101_R1AC.mov"
    assert _frames(out)["001_sh200"] == (25, 50)


def test_a_pattern_dub_starts_at_the_clips_record_in_point(tmp_path: Path):
    root, media = _project(tmp_path)
    (root / "cut.edl").write_text(FILM_EDL)
    out = root / "shots.yaml"
    result = import_edl(root, out, media, "--rate", "23.976", "--handles", "6")
    assert result.exit_code == 0, result.output
    dubs = {s["id"]: s["dubs"][0] for s in yaml.safe_load(out.read_text())["shots"]}
    head = 6 * Fraction(1001, 24000)  # Six handle frames at 23.976 before the cut.
    assert dubs["001_sh100"]["offset"] == pytest.approx(float(head), abs=1e-6)
    plan = load_plan(out, default_project(root), {})
    shot = plan.shots[0]
    wav_path = shot.dubs[0].audio
    assert wav_path is not None
    heard, _ = dub_audio(shot, shot.dubs[0], wav_path)
    cut = samples_for_frames(6, FILM, heard.rate)
    assert not heard.samples[:, :cut].any()  # The head handle: silence.
    wav = load_audio(wav_path).samples
    np.testing.assert_array_equal(heard.samples[:, cut : cut + 4800], wav[:, :4800])
    listing = invoke("render", str(out), "--list", "--json")
    job = json.loads(listing.output.splitlines()[0])
    assert job["dubs"][0]["offset"] == pytest.approx(float(head), abs=1e-6)
    out.unlink()
    result = import_edl(root, out, media, "--rate", "23.976", "--handles", "6", "--dub-preroll")
    assert "offset" not in yaml.safe_load(out.read_text())["shots"][0]["dubs"][0]


def test_a_line_the_edl_reader_would_drop_is_reported(tmp_path: Path):
    root, media = _project(tmp_path)
    lines = FILM_EDL.splitlines()
    lines.insert(5, "garbled by a mail client")
    (root / "cut.edl").write_text("\n".join(lines) + "\n")
    out = root / "shots.yaml"
    result = import_edl(root, out, media, "--rate", "23.976")
    assert result.exit_code == 0, result.output
    assert "cut.edl:6: not an EDL line, ignored: 'garbled by a mail client'" in result.output
    skipped = yaml.safe_load(out.read_text())["timeline"]["skipped"]
    assert any("garbled" in s for s in skipped)


@pytest.mark.parametrize(
    ("edl", "rate", "mode"),
    [(FILM_EDL, "23.976", "NON-DROP FRAME"), (DF_EDL, "29.97", "DROP FRAME")],
)
def test_the_exported_edl_keeps_its_fcm_line(tmp_path: Path, edl: str, rate: str, mode: str):
    root, media = _project(tmp_path)
    (root / "cut.edl").write_text(edl)
    out = root / "shots.yaml"
    assert import_edl(root, out, media, "--rate", rate).exit_code == 0
    plan = load_plan(out, default_project(root), {})
    assert plan.timeline is not None
    written = export_cut(plan.timeline, out, plan.shots, {}, root / "dub.edl")["de"]
    lines = written.read_text().splitlines()
    assert lines[0].startswith("TITLE:") and lines[1] == f"FCM: {mode}"
    assert read_cut(written, parse_rate(rate)).find_clips()  # Still an EDL the reader takes.
