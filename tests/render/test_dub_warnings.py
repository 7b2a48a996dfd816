"""Each dub's QC report holds its shot's warnings and its own, never another dub's: a supervisor
reading the German report must not be told that the French dub was trimmed."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

from click.testing import CliRunner

from lipdub.cli import main
from lipdub.eval.qc import qc_path
from lipdub.media.audio import save_wav
from tests.conftest import make_video, tone


def test_a_dubs_qc_warnings_are_its_own(tmp_path: Path):
    make_video(tmp_path / "sh.mov", 25, Fraction(25))
    save_wav(tone(3.0), tmp_path / "fr.wav")  # 2 s longer than the shot: trimmed, warned.
    save_wav(tone(1.0), tmp_path / "de.wav")  # Exactly the shot.
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\n[stages]\ngenerator = "passthrough"\n'
    )
    (tmp_path / "shots.yaml").write_text(
        "shots:\n  - id: sh\n    source: sh.mov\n    dubs:\n"
        "      - {name: fr, audio: fr.wav}\n      - {name: de, audio: de.wav}\n"
    )
    res = CliRunner().invoke(
        main, ["render", str(tmp_path / "shots.yaml"), "--json", "--project", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    fr, de = (
        json.loads(qc_path(tmp_path / "renders" / f"sh_{n}.mov").read_text()) for n in ("fr", "de")
    )
    assert any("fr.wav" in w and "trimmed" in w for w in fr["warnings"])
    assert not [w for w in de["warnings"] if "fr.wav" in w or w.startswith("fr:")]
    assert any("passthrough" in w for w in de["warnings"])  # The shot's own warning stays.
