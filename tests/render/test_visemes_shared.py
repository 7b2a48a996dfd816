"""The phonetic path on real footage: a synthetic dub whose phone times are known exactly
(eSpeak NG's events) is rendered onto a real clip, and the delivered mouth closes on its p/b/m.
QC measures the delivered file (dlib refitted on the output), and says which front end ran."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.media.audio import save_wav
from lipdub.phonetics.visemes import is_bilabial
from lipdub.speech import synthesize_phones
from tests.conftest import shared_data

pytestmark = [pytest.mark.shared, pytest.mark.slow]

CLIP = "SadTalker__examples_ref_video_WDA_AlexandriaOcasioCortez_000.mp4"  # 512 px, 25 fps.
FRAMES = 125
LINE = "My father found an old book of poems, and we read it aloud before the morning bus."


def _render(tmp_path: Path, dub_extra: str) -> dict:
    video = shared_data() / "clips" / CLIP
    audio, events = synthesize_phones(LINE, "en")
    save_wav(audio, tmp_path / "en.wav")
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\npreset = "draft"\ndevice = "cpu"\n'
        '[settings]\ncodec = "ffv1"\ncontainer = ".mkv"\naudio_fit = "pad-trim"\n'
    )
    (tmp_path / "shots.yaml").write_text(
        f"shots:\n  - {{id: s1, source: {video}, in: 0, out: {FRAMES}, "
        f"dubs: [{{name: en, audio: en.wav{dub_extra}}}]}}\n"
    )
    res = CliRunner().invoke(main, ["render", str(tmp_path / "shots.yaml"), "--json"])
    assert res.exit_code == 0, res.output
    record = json.loads((tmp_path / "renders" / ".qc" / "s1_en.mkv.json").read_text())
    truth = [math.floor(e.start_s * 25) for e in events if is_bilabial(e.phone)]
    record["truth"] = [f for f in truth if f < FRAMES]
    return record


def test_the_dubs_bilabials_come_out_closed_without_a_script(tmp_path: Path) -> None:
    record = _render(tmp_path, "")
    b = record["bilabials"]
    assert b["method"] == "recognition"
    assert b["measured"] >= 4
    assert b["share"] >= 0.8, b
    # And against eSpeak's own phone times, not only those the recognizer found.
    gaps = np.array([np.nan if g is None else g for g in record["mouth_opening"]])
    closed = [np.nanmin(gaps[max(0, f - 2) : f + 2]) <= b["level"] for f in record["truth"]]
    assert np.mean(closed) >= 0.7, closed


def test_with_the_script_every_bilabial_closes_and_qc_says_the_script_ran(tmp_path: Path) -> None:
    record = _render(tmp_path, f", text: '{LINE}', language: en")
    b = record["bilabials"]
    assert b["method"] == "script" and b["note"] is None
    assert abs(b["bilabials"] - len(record["truth"])) <= 1
    assert b["share"] >= 0.9, b
    assert not any("p/b/m" in w for w in record["warnings"])
