"""The actor's bank is cut with the project's analysis stages: a project that chose dlib68 gets
a bank whose lips were read by dlib68, the landmarker its renders fit, not the default mesh."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import lipdub.exemplar.actor_bank as actor_bank
from lipdub.cli import main
from lipdub.config.project import load_project
from lipdub.config.settings import resolve
from lipdub.errors import ConfigError
from tests.conftest import make_video


def test_the_bank_is_cut_with_the_projects_landmarker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_video(tmp_path / "anna.mov", 5, Fraction(25))
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\n[stages]\nlandmarker = "dlib68"\n'
        '[actors.anna]\nfootage = ["anna.mov"]\n'
    )
    project = load_project(tmp_path)
    settings = resolve(project.layer)
    seen: list[dict[str, Any]] = []

    def fake_analyze(video, start, stop, actors, settings, stages, **kw):
        seen.append({**(stages or {}), "settings": settings})
        raise ConfigError("stop here")  # Only the stages handed over matter.

    monkeypatch.setattr(actor_bank, "analyze_shot", fake_analyze)  # Used as the CLI calls it.
    res = CliRunner().invoke(
        main, ["personalize", "--actor", "anna", "--bank-only", "--project", str(tmp_path)]
    )
    assert res.exit_code == 2 and "stop here" in res.output  # The CLI builds what it hands on.
    assert type(seen[0]["landmarker"]).__name__ == "Dlib68Landmarker"
    assert seen[0]["settings"] == settings.analysis_settings()
