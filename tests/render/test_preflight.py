"""Early, clear refusals (exit 2 before any analysis): a still image as the video, a frame size
the codec cannot encode, an output folder that cannot be written."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.media.audio import save_wav
from lipdub.media.read import probe
from tests.conftest import counter_frame, make_video, tone

TOML = '[project]\nname = "t"\n[stages]\ngenerator = "passthrough"\n[settings]\nqc = false\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "lipdub.toml").write_text(TOML)
    save_wav(tone(1.0), tmp_path / "dub.wav")
    return tmp_path


def render(root: Path, *args: str):
    return CliRunner().invoke(main, ["render", *args, "--json", "--project", str(root)])


def _nothing_started(res) -> bool:
    return not [x for x in res.output.splitlines() if x.startswith("{") and "started" in x]


def test_an_odd_frame_size_is_refused_before_analysis_unless_the_codec_takes_it(project: Path):
    src = make_video(project / "odd.mkv", 25, Fraction(25), codec="ffv1", size=(125, 95))
    out = project / "renders" / "odd_de.mov"
    res = render(project, "--video", str(src), "--audio", str(project / "dub.wav"), "-o", str(out))
    assert res.exit_code == 2, res.output
    assert "needs an even width and height, the source is 125×95" in res.output
    assert "codec: ffv1" in res.output and _nothing_started(res)
    assert not (project / ".lipdub" / "cache").exists()  # No analysis was made.
    ok = project / "renders" / "odd_de.mkv"
    res = render(
        project, "--video", str(src), "--audio", str(project / "dub.wav"), "-o", str(ok)
    )  # .mkv: the one-clip form picks a codec that fits the name; here H.264 again...
    assert res.exit_code == 2  # ... which cannot take it either: the fix must be the codec.
    (project / "lipdub.toml").write_text(TOML + 'codec = "ffv1"\ncontainer = ".mkv"\n')
    res = render(project, "--video", str(src), "--audio", str(project / "dub.wav"), "-o", str(ok))
    assert res.exit_code == 0, res.output
    assert (probe(ok).width, probe(ok).height) == (125, 95)


def test_a_still_image_as_the_video_is_refused_unless_asked_for(project: Path):
    still = project / "portrait.png"
    cv2.imwrite(str(still), counter_frame(0))
    out = project / "renders" / "portrait_de.mov"
    args = ("--video", str(still), "--audio", str(project / "dub.wav"), "-o", str(out))
    res = render(project, *args)
    assert res.exit_code == 2 and "is a still image" in res.output and "--allow-still" in res.output
    assert _nothing_started(res) and not out.exists()
    res = render(project, *args, "--allow-still")
    assert res.exit_code == 0, res.output
    assert probe(out).frame_count == 1


def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(project: Path):
    src = make_video(project / "in.mov", 25, Fraction(25))
    (project / "renders").write_text("a file where the output folder should be")
    out = project / "renders" / "in_de.mov"
    res = render(project, "--video", str(src), "--audio", str(project / "dub.wav"), "-o", str(out))
    assert res.exit_code == 2, res.output
    assert "the output folder cannot be written" in res.output and _nothing_started(res)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_a_read_only_output_folder_is_refused(project: Path):
    src = make_video(project / "in.mov", 25, Fraction(25))
    folder = project / "renders"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        res = render(
            project, "--video", str(src), "--audio", str(project / "dub.wav"), "-o",
            str(folder / "in_de.mov"),
        )  # fmt: skip
    finally:
        folder.chmod(0o755)
    assert res.exit_code == 2 and "Permission denied" in res.output


def test_a_listing_does_not_need_a_writable_folder(project: Path):
    make_video(project / "in.mov", 25, Fraction(25))
    (project / "shots.yaml").write_text(
        "shots:\n  - {id: a, source: in.mov, dubs: [{name: de, audio: dub.wav, "
        "output: ro/a_de.mov}]}\n"
    )
    (project / "ro").write_text("not a folder")
    res = CliRunner().invoke(main, ["render", str(project / "shots.yaml"), "--list", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.splitlines()[0])["status"] == "todo"
