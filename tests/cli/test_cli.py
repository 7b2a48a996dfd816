"""The command line: project init, the one-clip and shots-file render, listing, exit codes."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner

from lipdub import __version__
from lipdub.cli import main
from lipdub.config.project import load_project
from lipdub.config.settings import Settings, resolve
from lipdub.media.audio import load_audio
from lipdub.media.read import open_video, probe
from tests.conftest import make_video, read_counter


def events(output: str) -> list[dict]:
    """The JSON event lines of a command's output."""
    return [json.loads(x) for x in output.splitlines() if x.startswith("{")]


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_help_and_version():
    assert run("--version").output.strip() == f"lipdub, version {__version__}"
    out = run("--help").output
    for command in ("render", "project", "plugins", "analyze", "personalize", "eval", "train"):
        assert command in out


def test_project_init_never_overwrites(tmp_path: Path):
    res = run("project", "init", str(tmp_path / "p"))
    assert res.exit_code == 0
    for sub in ("footage", "audio", "actors", "renders", ".lipdub/cache"):
        assert (tmp_path / "p" / sub).is_dir()
    (tmp_path / "p" / "lipdub.toml").write_text("# mine\n")
    res = run("project", "init", str(tmp_path / "p"))
    assert res.exit_code == 2 and "already exist" in res.output and "--force" in res.output
    assert (tmp_path / "p" / "lipdub.toml").read_text() == "# mine\n"
    assert run("project", "init", str(tmp_path / "p"), "--force").exit_code == 0
    assert "[project]" in (tmp_path / "p" / "lipdub.toml").read_text()


def test_one_clip_passthrough_render_keeps_frames_rate_and_carries_the_dub(
    tmp_path: Path, dub_wav: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(tmp_path)
    video = make_video(tmp_path / "in.mov", 40, Fraction(30000, 1001), timecode="00:59:58;00")
    out = tmp_path / "out" / "dubbed.mov"
    res = run(
        "render",
        "--video",
        str(video),
        "--audio",
        str(dub_wav),
        "-o",
        str(out),
        "--generator",
        "passthrough",
        "--json",
    )
    assert res.exit_code == 0, res.output
    events = [json.loads(line) for line in res.output.splitlines()]
    assert events[0]["event"] == "started" and events[-1]["event"] == "finished"
    assert any("padded" in e["message"] or "trimmed" in e["message"] for e in events)
    info = probe(out)
    assert (info.frame_count, info.fps) == (40, Fraction(30000, 1001))
    assert info.start_timecode == "00:59:58;00"
    with open_video(out) as src:
        assert [read_counter(f) for f in src.frames()] == list(range(40))
    audio = load_audio(out)
    assert audio.rate == 48_000
    assert abs(audio.duration_s - 40 / (30000 / 1001)) < 1 / 48_000 * 2
    assert not list(out.parent.glob(".*partial*"))


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, dub_wav: Path, clip_25: Path):
    res = run(
        "render",
        "--video",
        str(tmp_path / "missing.mov"),
        "--audio",
        str(dub_wav),
        "-o",
        str(tmp_path / "o.mov"),
    )
    assert res.exit_code == 2 and res.output.count("\n") == 1 and "missing.mov" in res.output
    res = run("render", "--video", str(clip_25), "--audio", str(dub_wav), "-o", str(clip_25))
    assert res.exit_code == 2 and "overwrite the source" in res.output
    res = run("render", "--video", str(clip_25), "--audio", str(dub_wav))
    assert res.exit_code == 2 and "needs all of" in res.output
    res = run(
        "render",
        "--video",
        str(clip_25),
        "--audio",
        str(dub_wav),
        "-o",
        str(tmp_path / "o.mov"),
        "--device",
        "gpu",
    )
    assert res.exit_code == 2 and "device must be" in res.output


def test_an_unreadable_dub_is_exit_2_before_rendering(tmp_path: Path, clip_25: Path):
    not_audio = tmp_path / "not_audio.wav"
    not_audio.write_bytes(b"garbage" * 50)
    out = tmp_path / "o.mov"
    res = run(
        "render",
        "--video",
        str(clip_25),
        "--audio",
        str(not_audio),
        "-o",
        str(out),
        "--generator",
        "passthrough",
        "--json",
    )
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert "not_audio.wav" in res.output and '"started"' not in res.output
    assert not out.exists()


SHOTS = """\
shots:
  - id: a
    source: in.mov
    in: 0
    out: 20
    dubs: [{name: de, audio: dub.wav}]
  - id: b
    source: in.mov
    in: 20
    dubs:
      - {name: de, audio: dub.wav}
      - {name: fr, audio: dub.wav}
    settings: {generator: broken}
"""
#: A generator that fails when the shot renders (nothing up front can tell).
BROKEN_PLUGIN = """\
from lipdub.errors import MediaError
from lipdub.hookspecs import hookimpl
from lipdub.stages import StageChoice


def _broken(options):
    raise MediaError("broken.mov: the generator's input vanished mid-render")


@hookimpl
def lipdub_generators():
    return [StageChoice("broken", _broken, "fails every shot (tests)")]
"""


@pytest.fixture
def reel(tmp_path: Path, dub_wav: Path) -> Path:
    make_video(tmp_path / "in.mov", 50, Fraction(25))
    (tmp_path / "dub.wav").write_bytes(dub_wav.read_bytes())
    (tmp_path / "lipdub_plugins.py").write_text(BROKEN_PLUGIN)
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\n[stages]\ngenerator = "passthrough"\n'
    )
    (tmp_path / "shots.yaml").write_text(SHOTS)
    return tmp_path


def test_list_json_enumerates_jobs(reel: Path):
    res = run("render", str(reel / "shots.yaml"), "--list", "--json")
    jobs = [json.loads(x) for x in res.output.splitlines()]
    assert [(j["id"], j["in"], j["out"], j["done"]) for j in jobs] == [
        ("a", 0, 20, False),
        ("b", 20, 50, False),
    ]
    assert jobs[1]["outputs"] == [str(reel / "renders/b_de.mov"), str(reel / "renders/b_fr.mov")]


def test_one_broken_shot_does_not_stop_the_other_and_reruns_are_noops(reel: Path):
    res = run("render", str(reel / "shots.yaml"), "--json")
    assert res.exit_code == 1
    kinds = {json.loads(x)["job"]: json.loads(x)["event"] for x in res.output.splitlines()}
    assert kinds == {"a": "finished", "b": "failed"}
    assert "input vanished" in res.output
    assert probe(reel / "renders" / "a_de.mov").frame_count == 20
    assert not (reel / "renders" / "b_de.mov").exists()
    page = (reel / "renders" / "lipdub-qc.html").read_text()
    assert "a — de" in page and "b — de" not in page
    assert "passthrough generator" in page and "<svg" in page
    assert (reel / "renders" / ".qc" / "a_de_before.png").is_file()
    res = run("render", str(reel / "shots.yaml"), "--shot", "a", "--json")
    assert res.exit_code == 0 and '"skipped"' in res.output
    before = (reel / "renders" / "a_de.mov").stat().st_mtime_ns
    res = run("render", str(reel / "shots.yaml"), "--shot", "a", "--force", "--json")
    assert res.exit_code == 0 and (reel / "renders" / "a_de.mov").stat().st_mtime_ns != before
    res = run("render", str(reel / "shots.yaml"), "--shot", "zz")
    assert res.exit_code == 2 and "no shot 'zz'" in res.output


def test_plugins_list_shows_every_stage_and_origin(reel: Path):
    res = run("plugins", "list", "--json", "--project", str(reel))
    rows = [json.loads(x) for x in res.output.splitlines()]
    stages = {r["stage"] for r in rows}
    assert stages == {
        "shots",
        "faces",
        "landmarker",
        "tracker",
        "masks",
        "generator",
        "blender",
        "executor",
        "personalizer",
    }
    # Each choice states the terms of the models it loads: the default path's landmarker is
    # Apache-2.0, the dlib 68-point one says it is research-only.
    licence = {r["name"]: r["licence"] for r in rows if r["stage"] == "landmarker"}
    assert licence["mediapipe"].startswith("Apache-2.0")
    assert licence["dlib68"].startswith("research-only") and "300-W" in licence["dlib68"]
    passthrough = next(r for r in rows if r["name"] == "passthrough")
    assert passthrough["selected"] and passthrough["source"] == "built-in"
    laplacian = next(r for r in rows if r["name"] == "laplacian")
    assert laplacian["options"] == {"levels": 4}  # What [stage_options.blender] may set.


def test_personalize_an_unknown_actor_is_a_clear_error(reel: Path):
    res = run("personalize", "--actor", "anna", "--project", str(reel))
    assert res.exit_code == 2 and "unknown actor 'anna'" in res.output


def test_one_audio_fit_default_and_the_audio_fit_option(tmp_path: Path, dub_wav: Path):
    """`project init` writes the same audio_fit the one-clip form defaults to, and --audio-fit
    overrides it: `error` refuses a dub of the wrong length, naming the setting."""
    assert run("project", "init", str(tmp_path / "p")).exit_code == 0
    assert resolve(load_project(tmp_path / "p").layer).audio_fit == Settings().audio_fit
    video = make_video(tmp_path / "in.mov", 75, Fraction(25))  # 3 s; the dub is 2 s.
    common = ["render", "--video", str(video), "--audio", str(dub_wav), "--generator"]
    common += ["passthrough", "--json", "--project", str(tmp_path / "p")]
    res = run(*common, "-o", str(tmp_path / "a.mov"), "--audio-fit", "error")
    assert res.exit_code != 0 and "audio_fit" in res.output, res.output
    res = run(*common, "-o", str(tmp_path / "b.mov"), "--audio-fit", "pad")
    assert res.exit_code == 0 and "padded" in res.output, res.output


def test_plugins_table_names_where_options_go(reel: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "200")  # The table's caption on one line.
    res = run("plugins", "list", "--project", str(reel))
    assert res.exit_code == 0 and "under [stage_options.STAGE]" in res.output


def test_plugins_table_at_80_columns_shows_every_option_whole(
    reel: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("COLUMNS", "80")
    res = run("plugins", "list", "--project", str(reel))
    assert res.exit_code == 0 and "…" not in res.output
    assert max(len(line) for line in res.output.splitlines()) <= 80
    listed = run("plugins", "list", "--json", "--project", str(reel))
    names = {o for x in listed.output.splitlines() for o in json.loads(x).get("options", {})}
    cells = {part.strip() for line in res.output.splitlines() for part in line.split("│")}
    assert names and names <= cells  # Each option name whole, in a cell of its own.
