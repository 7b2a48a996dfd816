"""The actor's bank is cut with the project's analysis stages: a project that chose dlib68 gets
a bank whose lips were read by dlib68, the landmarker its renders fit, not the default mesh."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

import lipdub.exemplar.actor_bank as actor_bank
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
    seen: list[dict[str, Any]] = []

    def fake_analyze(video, start, stop, actors, settings, stages, **kw):
        seen.append(dict(stages or {}))
        raise ConfigError("stop here")  # Only the stages handed over matter.

    monkeypatch.setattr(actor_bank, "analyze_shot", fake_analyze)
    with pytest.raises(ConfigError, match="stop here"):
        actor_bank.build_actor_bank(
            project.actors["anna"], tmp_path, project.actors, settings=resolve(project.layer)
        )
    assert type(seen[0]["landmarker"]).__name__ == "Dlib68Landmarker"
