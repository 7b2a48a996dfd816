"""`personalize` without --shots rebuilds the bank that `--bank-only --shots` built with the
same shots, instead of silently shrinking it to the footage."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.cli import personalize as personalize_cli
from lipdub.media.audio import save_wav
from tests.conftest import make_video, tone


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[list[str]]]:
    make_video(tmp_path / "in.mov", 25, Fraction(25))
    save_wav(tone(1.0), tmp_path / "dub.wav")
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\n[actors.anna]\nfootage = ["in.mov"]\n'
    )
    (tmp_path / "shots.yaml").write_text(
        "shots:\n  - {id: a, source: in.mov, actors: [anna], dubs: [{name: de, audio: dub.wav}]}\n"
    )
    banked: list[list[str]] = []  # The shot ids each bank build was given.

    def fake_build(actor, root, actors, shots, progress, analysis_with=None):
        banked.append([s.id for s in shots])
        return []

    monkeypatch.setattr(personalize_cli, "build_actor_bank", fake_build)
    return tmp_path, banked


def personalize(root: Path, *args: str):
    return CliRunner().invoke(
        main, ["personalize", "--actor", "anna", "--bank-only", "--json", "--project", str(root),
               *args],
    )  # fmt: skip


def test_the_shots_a_bank_was_built_with_are_banked_again(project):
    root, banked = project
    assert personalize(root, "--shots", str(root / "shots.yaml")).exit_code == 0
    res = personalize(root)  # No --shots this time.
    assert res.exit_code == 0, res.output
    assert banked == [["a"], ["a"]]
    notes = [json.loads(x) for x in res.output.splitlines() if '"note"' in x]
    assert "as the bank was built (--shots)" in notes[0]["message"]


def test_a_remembered_shots_file_that_is_gone_is_refused_clearly(project):
    root, banked = project
    assert personalize(root, "--shots", str(root / "shots.yaml")).exit_code == 0
    (root / "shots.yaml").unlink()
    res = personalize(root)
    assert res.exit_code == 2 and "which is gone" in res.output and "bank-shots.txt" in res.output
    assert banked == [["a"]]


def _tuned(monkeypatch: pytest.MonkeyPatch, root: Path) -> list[str]:
    """Replace the fine-tuning job with a recorder; returns the actors it was run for."""
    runs: list[str] = []

    def fake_run_job(**job):
        runs.append(job["actor"].name)
        return str(root / "actors" / "anna" / "personal.safetensors")

    monkeypatch.setattr(personalize_cli, "run_job", fake_run_job)
    return runs


def test_a_default_project_gets_its_bank_and_no_research_only_fine_tuning(project, monkeypatch):
    """The default generator draws on the bank; fine-tuning would only train the research-only
    stylesync weights, which a default render never loads."""
    root, banked = project
    runs = _tuned(monkeypatch, root)
    res = CliRunner().invoke(
        main, ["personalize", "--actor", "anna", "--json", "--project", str(root)]
    )
    assert res.exit_code == 0, res.output
    assert banked == [[]] and runs == []
    notes = [json.loads(x) for x in res.output.splitlines() if '"note"' in x]
    assert any("no fine-tuning" in n["message"] for n in notes)


def test_fine_tuning_by_choice_warns_of_its_research_only_weights(project, monkeypatch):
    root, _ = project
    runs = _tuned(monkeypatch, root)
    res = CliRunner().invoke(
        main, ["personalize", "--actor", "anna", "--fine-tune", "--json", "--project", str(root)]
    )
    assert res.exit_code == 0, res.output
    assert runs == ["anna"]
    warnings = [json.loads(x) for x in res.output.splitlines() if '"warning"' in x]
    assert any("research-only" in w["message"] for w in warnings)
