"""A killed render leaves nothing under the final name, and the next run renders it again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from lipdub.media.read import probe
from tests.conftest import make_video


@pytest.mark.slow
def test_kill_then_resume(tmp_path: Path, dub_wav: Path):
    video = make_video(tmp_path / "long.mov", 600, Fraction(25), size=(320, 240))
    out = tmp_path / "renders" / "long_de.mov"
    cmd = [
        sys.executable,
        "-m",
        "lipdub",
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
        "--preset",
        "broadcast",
    ]  # ProRes: slow enough to be caught mid-way.
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event["event"] == "progress" and event["done"] >= 50:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists()  # Killed mid-way: nothing under the final name.
    partials = list(out.parent.glob(".long_de.lipdub-partial*"))
    assert partials  # The half-written file is under the hidden temporary name.
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    assert probe(out).frame_count == 600
    assert not list(out.parent.glob(".long_de.lipdub-partial*"))
