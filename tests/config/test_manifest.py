"""lipdub.toml and shots.yaml: typed records, precedence, and one clear message per mistake."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from lipdub.config.plan import load_plan
from lipdub.config.project import default_project, find_project, load_project
from lipdub.errors import ConfigError
from tests.conftest import make_video

GOOD_TOML = """\
[project]
name = "film"
preset = "broadcast"
device = "cpu"

[stages]
blender = "poisson"

[settings]
batch_size = 4

[actors.anna]
footage = ["footage/anna.mov"]
"""

GOOD_SHOTS = """\
defaults:
  audio_fit: pad
shots:
  - id: sh010
    source: footage/reel.mov
    in: "01:00:00;10"
    out: 40
    actors: [anna]
    dubs:
      - name: de
        audio: audio/de.wav
        offset: 0.5
        gain_db: -3
      - name: fr
        stems: {anna: audio/fr_anna.wav}
    settings:
      batch_size: 2
  - id: sh020
    source: footage/reel.mov
    in: 40
    dubs:
      - name: de
        audio: audio/de.wav
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "footage").mkdir()
    (tmp_path / "audio").mkdir()
    make_video(tmp_path / "footage" / "reel.mov", 60, Fraction(30000, 1001), timecode="01:00:00;00")
    make_video(tmp_path / "footage" / "anna.mov", 5, Fraction(25))
    for name in ("de.wav", "fr_anna.wav"):
        (tmp_path / "audio" / name).write_bytes(b"RIFF")  # Existence is what the plan checks.
    (tmp_path / "lipdub.toml").write_text(GOOD_TOML)
    (tmp_path / "shots.yaml").write_text(GOOD_SHOTS)
    return tmp_path


def plan_of(root: Path, cli: dict | None = None):
    return load_plan(root / "shots.yaml", load_project(root), cli or {})


def test_good_manifest_resolves_with_precedence(project: Path):
    plan = plan_of(project, {"device": "cuda:1"})
    sh010, sh020 = plan.shots
    assert (sh010.start, sh010.stop, sh010.fps) == (10, 40, Fraction(30000, 1001))
    assert (sh020.start, sh020.stop) == (40, 60)  # `out` defaults to the source's end.
    s = sh010.settings
    assert s.preset == "broadcast" and s.codec == "prores_hq"  # From the preset.
    assert s.blender == "poisson"  # Project [stages] over the preset's feather.
    assert s.batch_size == 2 and sh020.settings.batch_size == 4  # Shot over project.
    assert s.audio_fit == "pad"  # shots.yaml defaults over the project's default.
    assert s.device == "cuda:1"  # Command line over everything.
    de, fr = sh010.dubs
    assert (de.offset_s, de.gain_db) == (0.5, -3.0)
    assert de.output == project / "renders" / "sh010_de.mov"
    assert fr.driving_audio("anna") == project / "audio" / "fr_anna.wav"
    assert plan.select(("sh020",)) == (sh020,)


def test_project_is_found_from_a_subfolder(project: Path):
    sub = project / "footage"
    assert find_project(sub) == project.resolve()
    assert find_project(Path("/")) is None
    assert default_project(sub).actors == {}


def _error(
    project: Path, toml: str | None = None, shots: str | None = None, cli: dict | None = None
) -> str:
    if toml is not None:
        (project / "lipdub.toml").write_text(toml)
    if shots is not None:
        (project / "shots.yaml").write_text(shots)
    with pytest.raises(ConfigError) as info:
        plan_of(project, cli)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_shot_key_names_line_and_suggests(project: Path):
    msg = _error(project, shots=GOOD_SHOTS.replace("    out: 40", "    otu: 40"))
    assert "shots.yaml:7:" in msg and "'otu'" in msg and "did you mean 'out'" in msg


def test_unknown_setting_key(project: Path):
    msg = _error(project, shots=GOOD_SHOTS.replace("batch_size: 2", "batchsize: 2"))
    assert "shots.yaml:17:" in msg and "did you mean 'batch_size'" in msg


def test_bad_type(project: Path):
    msg = _error(project, shots=GOOD_SHOTS.replace("batch_size: 2", "batch_size: two"))
    assert "shots.yaml:17:" in msg and "batch_size" in msg and "must be int" in msg
    msg = _error(project, shots=GOOD_SHOTS.replace("offset: 0.5", "offset: soon"))
    assert "shots.yaml:12:" in msg and "`offset` must be a number" in msg


def test_audio_scale_setting(project: Path):
    shots = GOOD_SHOTS.replace("batch_size: 2", "audio_scale: 2.5")
    (project / "shots.yaml").write_text(shots)
    sh010, sh020 = plan_of(project).shots
    assert sh010.settings.audio_scale == 2.5
    assert sh020.settings.audio_scale is None  # None: the checkpoint's own scale.
    assert plan_of(project, {"audio_scale": 3}).shots[1].settings.audio_scale == 3
    msg = _error(project, shots=GOOD_SHOTS.replace("batch_size: 2", "audio_scale: 0"))
    assert "shots.yaml:17:" in msg and "audio_scale must be a number > 0" in msg
    msg = _error(project, shots=GOOD_SHOTS.replace("batch_size: 2", "audio_scale: loud"))
    assert "shots.yaml:17:" in msg and "must be int or float or null" in msg


def test_missing_files(project: Path):
    msg = _error(project, shots=GOOD_SHOTS.replace("footage/reel.mov", "footage/reeel.mov", 1))
    assert "shots.yaml:5:" in msg and "reeel.mov does not exist" in msg
    msg = _error(project, shots=GOOD_SHOTS.replace("audio/de.wav", "audio/xx.wav", 1))
    assert "shots.yaml:11:" in msg and "xx.wav does not exist" in msg
    msg = _error(project, toml=GOOD_TOML.replace("anna.mov", "bob.mov"))
    assert "lipdub.toml:13:" in msg and "bob.mov does not exist" in msg


def test_unknown_actor(project: Path):
    msg = _error(project, shots=GOOD_SHOTS.replace("actors: [anna]", "actors: [ana]"))
    assert "shots.yaml:8:" in msg and "unknown actor 'ana'" in msg and "did you mean 'anna'" in msg
    assert "[actors.ana]" in msg


def test_in_after_out_and_out_past_end(project: Path):
    msg = _error(project, shots=GOOD_SHOTS.replace("out: 40", "out: 5"))
    assert "in (10) must be before out (5)" in msg
    msg = _error(project, shots=GOOD_SHOTS.replace("out: 40", "out: 600"))
    assert "past the source's end (60 frames)" in msg


def test_timecode_before_source_start_and_malformed(project: Path):
    msg = _error(project, shots=GOOD_SHOTS.replace('"01:00:00;10"', '"00:59:59;00"'))
    assert "before the source's start timecode 01:00:00;00" in msg
    msg = _error(project, shots=GOOD_SHOTS.replace('"01:00:00;10"', '"1 minute"'))
    assert "shots.yaml:6:" in msg and "not a timecode" in msg


def test_project_errors(project: Path):
    msg = _error(project, toml=GOOD_TOML.replace('device = "cpu"', 'device = "gpu"'))
    assert "lipdub.toml:4:" in msg and "device must be auto, cpu, cuda or cuda:N" in msg
    msg = _error(project, toml=GOOD_TOML.replace('preset = "broadcast"', 'preset = "broadcst"'))
    assert "unknown preset 'broadcst'" in msg and "did you mean 'broadcast'" in msg
    msg = _error(project, toml=GOOD_TOML + "\n[render]\nx = 1\n")
    assert "unknown table [render]" in msg
    msg = _error(project, toml=GOOD_TOML.replace('blender = "poisson"', 'blend3r = "poisson"'))
    assert "lipdub.toml:7:" in msg and "unknown stage 'blend3r'" in msg
    msg = _error(project, toml=GOOD_TOML.replace("batch_size = 4", "batch_size = true"))
    assert "lipdub.toml:10:" in msg and "must be int" in msg
    msg = _error(project, toml="[project\nname=1")
    assert "invalid TOML" in msg


def test_yaml_and_structure_errors(project: Path):
    assert "invalid YAML" in _error(project, shots="shots: [\n  - id: a\n")
    assert "needs a non-empty `dubs:` list" in _error(
        project, shots="shots:\n  - id: a\n    source: footage/reel.mov\n"
    )
    msg = _error(project, shots=GOOD_SHOTS.replace("id: sh020", "id: sh010"))
    assert "duplicate shot id 'sh010'" in msg
    msg = _error(
        project, shots=GOOD_SHOTS.replace("name: fr", "name: fr\n        output: footage/reel.mov")
    )
    assert "would overwrite the source" in msg


def test_cli_settings_are_checked_too(project: Path):
    assert "codec = 'h265' is not one of" in _error(project, cli={"codec": "h265"})


def test_a_stem_without_a_file_is_refused(project: Path):
    # Found by the type check: `stems: {anna: }` gave a Dub whose stem for anna was None, and the
    # render failed on it only after analysis, far from the line that caused it.
    msg = _error(project, shots=GOOD_SHOTS.replace("{anna: audio/fr_anna.wav}", "{anna: }"))
    assert "shots.yaml:15:" in msg and "stem anna needs an audio file" in msg
