"""Five renders of one real shot — one thread, two, one CPU, all of them, and on Ray — write one
file, byte for byte (README: "Files are written bitexact")."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_data

pytestmark = [pytest.mark.shared, pytest.mark.slow]

# Test split, 160×160, 25 fps, own speech; 55 of its first 100 frames are bank frames (a face
# turned less than the bank's limit). PC-AVS 00098, used before, turns: 24 or 25 by the last
# decimal of the landmarks, against the 25 a bank needs.
CLIP = "deep_avsr__av_demo_00019.mp4"
DUB = "dreamtalk__data_audio_German1.wav"


def _render(root: Path, threads: int | None, one_cpu: bool, *extra: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LIPDUB_DISABLE_PLUGIN_AUTOLOAD": "1"}
    if threads is not None:
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}

    def pin() -> None:
        if one_cpu:
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    done = subprocess.run(
        [sys.executable, "-m", "lipdub", "render", "shots.yaml", "--json", "--force", *extra],
        cwd=root,
        env=env,
        preexec_fn=pin,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # The exemplar rendered the face (nothing passed through), unless a fallback is asked for.
    assert "too thin" not in done.stdout or "--fallback" in extra
    return hashlib.sha256((root / "renders" / "s1_de.mp4").read_bytes()).hexdigest()


def _project(root: Path, frames: int) -> None:
    data = shared_data()
    (root / "lipdub.toml").write_text(
        '[project]\nname = "det"\n[settings]\ncodec = "h264"\ncontainer = ".mp4"\n'
    )
    (root / "shots.yaml").write_text(
        f"shots:\n  - id: s1\n    source: {data / 'clips' / CLIP}\n    in: 0\n"
        f"    out: {frames}\n    dubs: [{{name: de, audio: {data / 'audio' / DUB}}}]\n"
    )


def test_five_renders_of_one_shot_have_one_sha256(tmp_path: Path):
    _project(tmp_path, 100)  # Enough frames for an exemplar bank (fewer keep the source).
    pinnable = hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1
    digests = {
        "1 thread": _render(tmp_path, 1, False),
        "2 threads": _render(tmp_path, 2, False),
        "default": _render(tmp_path, None, False),
    }
    if pinnable:
        digests["one CPU"] = _render(tmp_path, None, True)
    if importlib.util.find_spec("ray") is not None:
        digests["ray"] = _render(tmp_path, None, False, "--executor", "ray")
    assert len(digests) >= 3
    assert len(set(digests.values())) == 1, digests


def test_the_stylesync_fallback_writes_the_same_bytes_with_one_thread_or_two(tmp_path: Path):
    """The generator a thin bank falls back to: torch's CPU reductions split by thread count
    (one thread gave ±1/255 on a few pixels against two), so the engine fixes it."""
    _project(tmp_path, 25)
    one = _render(tmp_path, 1, False, "--generator", "stylesync")
    two = _render(tmp_path, 2, False, "--generator", "stylesync")
    assert one == two
    one = _render(tmp_path, 1, False, "--fallback", "stylesync")
    two = _render(tmp_path, 2, False, "--fallback", "stylesync")
    assert one == two
