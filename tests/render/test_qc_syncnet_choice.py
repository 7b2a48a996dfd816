"""SyncNet by choice only (issue 25): the default render's QC never loads the research-only
SyncNet, nor fingerprints it; ``qc_syncnet`` (or ``--qc-syncnet``) asks for it. Nor does it need
the stylesync weights, unless ``fallback`` (which takes only its two choices) asks for them."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from lipdub.config.plan import load_plan
from lipdub.config.project import load_project
from lipdub.config.settings import check_layer, resolve
from lipdub.errors import ConfigError
from lipdub.eval import qc as qc_module
from lipdub.media.audio import save_wav
from lipdub.model.checkpoint import load_manifest
from lipdub.render import pipeline
from lipdub.render.fingerprint import model_files
from tests.conftest import make_video, tone


def _shot(root: Path, settings: str = "") -> Any:
    make_video(root / "in.mov", 20, Fraction(25))
    save_wav(tone(0.8), root / "de.wav")
    (root / "lipdub.toml").write_text(f'[project]\nname = "t"\n[settings]\n{settings}')
    (root / "shots.yaml").write_text(
        "shots:\n  - {id: a, source: in.mov, dubs: [{name: de, audio: de.wav}]}\n"
    )
    (shot,) = load_plan(root / "shots.yaml", load_project(root), {}).shots
    return shot


def _work() -> Any:
    """What _qc reads of a FaceWork: one dubbed track of anna."""
    track = SimpleNamespace(actor="anna")
    return SimpleNamespace(
        tracks=[SimpleNamespace(track=track, work=object())],
        fallbacks=[],
        detector=None,
        first_region=lambda i, shape: None,
        first_source=lambda i: None,
        resting=lambda: {},
        own_mouth=lambda: np.zeros(20, bool),
        visemes=None,
        not_dubbed=[{"track": 1, "actor": "ben", "reason": "12 usable frames"}],
        closure_report=lambda: None,
    )


def _measured(monkeypatch: pytest.MonkeyPatch, shot: Any) -> dict[str, Any]:
    """Run the pipeline's QC call with measure_dub recorded instead of run."""
    seen: dict[str, Any] = {}

    def measure(**kwargs: Any) -> Any:
        seen.update(kwargs)
        return qc_module.DubQC(shot="a", dub="de", output="o", frames=20, fps="25/1", generator="g")

    monkeypatch.setattr(qc_module, "measure_dub", measure)
    work = _work()
    dub = shot.dubs[0]
    audio = pipeline._qc_audio(shot, dub, work)
    pipeline._qc(shot, dub, "exemplar", work, [], {"warnings": []}, lambda e: None, audio, [])
    return seen


def test_the_default_qc_never_calls_the_syncnet_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse() -> None:
        raise AssertionError("the default QC loaded the SyncNet")

    monkeypatch.setattr(qc_module, "default_syncnet", refuse)
    seen = _measured(monkeypatch, _shot(tmp_path))
    assert seen["syncnet"] is None
    assert seen["not_dubbed"] == [{"track": 1, "actor": "ben", "reason": "12 usable frames"}]


def test_qc_syncnet_asks_for_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = ("syncnet-x", object())
    monkeypatch.setattr(qc_module, "default_syncnet", lambda: loaded)
    seen = _measured(monkeypatch, _shot(tmp_path, "qc_syncnet = true\n"))
    assert seen["syncnet"] is loaded


def test_the_fingerprint_names_the_syncnet_only_when_qc_uses_it() -> None:
    if load_manifest().default_syncnet is None:
        pytest.skip("no default_syncnet in weights/manifest.toml")
    roles = [m.role for m in model_files(resolve())]
    assert "syncnet" not in roles
    roles = [m.role for m in model_files(resolve({"qc_syncnet": True}))]
    assert "syncnet" in roles
    assert "syncnet" not in [
        m.role for m in model_files(resolve({"qc_syncnet": True, "qc": False}))
    ]


def test_the_fallback_setting_takes_its_two_choices() -> None:
    assert resolve().fallback == "source" and resolve().qc_syncnet is False
    assert resolve({"fallback": "stylesync"}).fallback == "stylesync"
    with pytest.raises(ConfigError, match="fallback = 'wav2lip' is not one of source, stylesync"):
        check_layer({"fallback": "wav2lip"}, "lipdub.toml:3")
