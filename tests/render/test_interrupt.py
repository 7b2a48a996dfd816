"""Ctrl-C (SIGINT) or a farm's cancel (SIGTERM) in the middle of an encode: the run ends with the
shell's code (130 / 143), a `failed` event says so, and nothing is left behind: no partial
file, no claim, no scratch folder, no output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest

from lipdub.media.audio import save_wav
from tests.conftest import REPO, make_video, tone

#: Marks when the encode is under way, then holds it there (the signal arrives meanwhile).
HOLD = """
import time
from pathlib import Path
from lipdub.hookspecs import hookimpl

@hookimpl
def lipdub_shot_event(event):
    if event.kind == "progress" and event.stage.startswith("encode"):
        (Path(__file__).parent / "encoding").touch()
        time.sleep(60)
"""


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_render_says_so_and_leaves_nothing(tmp_path: Path, sig: int, code: int):
    make_video(tmp_path / "in.mov", 100, Fraction(25))
    save_wav(tone(4.0), tmp_path / "dub.wav")
    (tmp_path / "lipdub_plugins.py").write_text(HOLD)
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\n[stages]\ngenerator = "passthrough"\n[settings]\nqc = false\n'
    )
    (tmp_path / "shots.yaml").write_text(
        "shots:\n  - {id: a, source: in.mov, dubs: [{name: de, audio: dub.wav}]}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "LIPDUB_DISABLE_PLUGIN_AUTOLOAD": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lipdub", "render", "shots.yaml", "--json"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "encoding").exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "the encode never began"
            time.sleep(0.05)  # Until the encode has begun (a partial file exists).
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    events = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    failed = [e for e in events if e["event"] == "failed"]
    assert failed and failed[0]["message"].startswith("interrupted")
    left = [p.relative_to(tmp_path).as_posix() for p in (tmp_path / "renders").rglob("*")]
    assert [p for p in left if not p.endswith(".lipdub-job")] == []
    scratch = tmp_path / ".lipdub" / "tmp"
    assert not scratch.exists() or not list(scratch.iterdir())
