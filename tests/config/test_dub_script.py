"""A dub's script in shots.yaml: `text`, `text_file` or a NAME.txt sidecar, with its language."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.cli.render import _read_text
from lipdub.errors import ConfigError
from tests.config.test_manifest import GOOD_SHOTS, _error, plan_of
from tests.config.test_manifest import project as project


def _shots(dub_lines: str) -> str:
    return GOOD_SHOTS.replace("        offset: 0.5\n", "        offset: 0.5\n" + dub_lines)


def test_inline_text_with_the_dub_names_language(project: Path) -> None:
    (project / "shots.yaml").write_text(_shots('        text: "Papa bringt Brot."\n'))
    de = plan_of(project).shots[0].dubs[0]
    script = de.script_for("anna")
    assert script is not None
    assert (script.text, script.language) == ("Papa bringt Brot.", "de")
    assert script.origin.endswith("shots.yaml:13")


def test_text_file_and_explicit_language(project: Path) -> None:
    (project / "audio" / "de_script.txt").write_text("Mama mag Blumen.\n", encoding="utf-8")
    lines = "        text_file: audio/de_script.txt\n        language: de-ch\n"
    (project / "shots.yaml").write_text(_shots(lines))
    script = plan_of(project).shots[0].dubs[0].script_for("anna")
    assert script is not None and (script.text, script.language) == ("Mama mag Blumen.", "de-ch")


def test_a_sidecar_beside_the_audio_is_the_script(project: Path) -> None:
    plan = plan_of(project)
    de = plan.shots[0].dubs[0]
    assert de.script_for("anna") is None  # No sidecar yet.
    (project / "audio" / "de.txt").write_text("Obst und Brot.", encoding="utf-8")
    script = de.script_for("anna")
    assert script is not None and script.text == "Obst und Brot." and script.language == "de"


def test_script_mistakes_name_their_line(project: Path) -> None:
    msg = _error(project, shots=_shots('        text: "a"\n        text_file: x.txt\n'))
    assert "shots.yaml:14" in msg and "not both" in msg
    msg = _error(project, shots=_shots("        text_file: audio/none.txt\n"))
    assert "does not exist" in msg
    no_language = GOOD_SHOTS.replace("name: de\n        audio", "name: take2\n        audio")
    no_language = no_language.replace(
        "        offset: 0.5\n", '        offset: 0.5\n        text: "Hallo"\n'
    )
    msg = _error(project, shots=no_language)
    assert "no language" in msg and "language: de" in msg


def test_one_clip_form_needs_a_language_for_its_text(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        main, ["render", "shots.yaml", "--dub-text", "Hallo", "--project", str(tmp_path)]
    )
    assert res.exit_code == 2 and "one-clip form" in res.output


def test_dub_text_file_option_reads_the_file(tmp_path: Path) -> None:
    (tmp_path / "s.txt").write_text("Bonjour.", encoding="utf-8")
    assert _read_text(f"@{tmp_path / 's.txt'}") == "Bonjour."
    assert _read_text("Bonjour.") == "Bonjour."
    with pytest.raises(ConfigError, match="cannot read"):
        _read_text(f"@{tmp_path / 'none.txt'}")
