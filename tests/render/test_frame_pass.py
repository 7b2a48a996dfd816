"""The pipelined encode pass (lipdub.render.frame_pass): the serial path's bytes, frames left
alone skip the per-frame work, and a failure in any stage — decode, paste, encode — or Ctrl-C
ends every stage without a hang and leaves no file behind."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from lipdub.media.atomic import atomic_output
from lipdub.media.read import open_video
from lipdub.media.stream import DEFAULT_DEPTH
from lipdub.media.write import VideoWriter, codec_for
from lipdub.render.frame_pass import (
    MIN_QUEUE,
    SERIAL_ENV,
    encode_frames,
    queue_depth,
    render_workers,
)
from tests.conftest import REPO, make_video, read_counter

FRAMES = 40


def _paste(i: int, frame: np.ndarray) -> np.ndarray:
    """A per-frame change that depends on the frame index and its pixels (a moving box)."""
    out = frame.copy()
    x = (i * 3) % (frame.shape[1] - 20)
    out[40:60, x : x + 20] = 255 - out[40:60, x : x + 20]
    return out


def _render(src: Path, out: Path, workers: int, changes: np.ndarray | None = None, fn=_paste):
    with open_video(src) as video, atomic_output(out) as tmp:
        info = video.info
        with VideoWriter(tmp, info.width, info.height, Fraction(25), codec_for("h264", out)) as w:
            return encode_frames(video.frames(), w.write, fn, changes, workers=workers)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_video(tmp_path / "in.mov", FRAMES, Fraction(25))


def test_pipelined_pass_writes_the_serial_bytes(tmp_path: Path, clip: Path):
    serial = _render(clip, tmp_path / "serial.mov", 1)
    piped = _render(clip, tmp_path / "piped.mov", 3)
    assert _sha(tmp_path / "serial.mov") == _sha(tmp_path / "piped.mov")
    assert serial.workers == 1 and piped.workers == 3
    for times in (serial, piped):
        assert times.decode.items == times.composite.items == times.encode.items == FRAMES
    with open_video(tmp_path / "piped.mov") as v:
        assert [read_counter(f) for f in v.frames()] == list(range(FRAMES))


def test_unchanged_frames_skip_the_work_and_stay_in_order(tmp_path: Path, clip: Path):
    changes = np.zeros(FRAMES, bool)
    changes[10:20] = True
    seen: list[int] = []

    def paste(i: int, frame: np.ndarray) -> np.ndarray:
        seen.append(i)
        return _paste(i, frame)

    times = _render(clip, tmp_path / "out.mov", 2, changes, paste)
    assert sorted(seen) == list(range(10, 20))
    assert times.untouched == FRAMES - 10 and times.composite.items == 10
    _render(clip, tmp_path / "serial.mov", 1, changes)
    assert _sha(tmp_path / "out.mov") == _sha(tmp_path / "serial.mov")


def test_serial_env_turns_the_paste_pool_off(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(SERIAL_ENV, "1")
    assert render_workers() == 1
    monkeypatch.delenv(SERIAL_ENV)
    assert render_workers() >= 1


def _no_partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "in.mov")


def _wait_threads(before: int) -> None:
    deadline = time.monotonic() + 10
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= before, [t.name for t in threading.enumerate()]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_paste_stops_every_stage_and_leaves_no_file(
    tmp_path: Path, clip: Path, workers: int
):
    before = threading.active_count()

    def paste(i: int, frame: np.ndarray) -> np.ndarray:
        if i == 17:
            raise RuntimeError("paste failed at frame 17")
        return _paste(i, frame)

    with pytest.raises(RuntimeError, match="frame 17"):
        _render(clip, tmp_path / "out.mov", workers, fn=paste)
    assert _no_partials(tmp_path) == []
    _wait_threads(before)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_decode_stops_every_stage_and_leaves_no_file(tmp_path: Path, workers: int):
    before = threading.active_count()

    def frames() -> Iterator[np.ndarray]:
        for i in range(30):
            if i == 12:
                raise OSError("decode failed near frame 12")
            yield np.full((96, 128, 3), i, np.uint8)

    out = tmp_path / "out.mov"
    with (
        pytest.raises(OSError, match="frame 12"),
        atomic_output(out) as tmp,
        VideoWriter(tmp, 128, 96, Fraction(25), codec_for("h264", out)) as w,
    ):
        encode_frames(frames(), w.write, _paste, workers=workers)
    assert list(tmp_path.iterdir()) == []
    _wait_threads(before)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_encode_stops_every_stage_and_leaves_no_file(
    tmp_path: Path, clip: Path, workers: int
):
    before = threading.active_count()
    pasted: list[int] = []

    def paste(i: int, frame: np.ndarray) -> np.ndarray:
        pasted.append(i)
        return _paste(i, frame)

    out = tmp_path / "out.mov"
    with (
        pytest.raises(OSError, match="disk full"),
        open_video(clip) as video,
        atomic_output(out) as tmp,
        VideoWriter(tmp, 128, 96, Fraction(25), codec_for("h264", out)) as w,
    ):

        def write(frame: np.ndarray) -> None:
            if w.frames_written == 5:
                raise OSError("disk full")
            w.write(frame)

        encode_frames(video.frames(), write, paste, workers=workers)
    assert _no_partials(tmp_path) == []
    assert len(pasted) < FRAMES  # The decode and the paste stopped too, not only the encode.
    _wait_threads(before)


#: A pipelined pass whose paste is slow; it says when it is under way, then gets SIGINT.
SLOW = """
import sys, time
from fractions import Fraction
from pathlib import Path
from lipdub.media.atomic import atomic_output
from lipdub.media.read import open_video
from lipdub.media.write import VideoWriter, codec_for
from lipdub.render.frame_pass import encode_frames

src, out = Path(sys.argv[1]), Path(sys.argv[2])

def paste(i, frame):
    if i == 3:
        (out.parent / "pasting").touch()
    time.sleep(0.2)
    return frame

with open_video(src) as video, atomic_output(out) as tmp:
    with VideoWriter(tmp, 128, 96, Fraction(25), codec_for("h264", out)) as w:
        encode_frames(video.frames(), w.write, paste, workers=2)
"""


def test_sigint_during_a_pipelined_pass_leaves_nothing_behind(tmp_path: Path):
    (tmp_path / "src").mkdir()
    src = make_video(tmp_path / "src" / "in.mov", 200, Fraction(25))
    folder = tmp_path / "renders"
    folder.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW, str(src), str(folder / "out.mov")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (folder / "pasting").exists() and proc.poll() is None:
            assert time.monotonic() < deadline, "the pass never began"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)  # No hang: the workers and threads end.
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (-signal.SIGINT, 130, 1), err
    assert "KeyboardInterrupt" in err
    assert sorted(p.name for p in folder.iterdir()) == ["pasting"]


def test_the_queues_hold_a_byte_budget_of_frames_not_a_fixed_count() -> None:
    assert queue_depth(None) == DEFAULT_DEPTH
    assert queue_depth(1920 * 1080 * 3) == DEFAULT_DEPTH  # 1080p: as before.
    assert queue_depth(3840 * 2160 * 3) == MIN_QUEUE  # UHD: a quarter as many frames.
    assert queue_depth(8192 * 8192 * 3) == MIN_QUEUE
    assert queue_depth(64 * 64 * 3) == DEFAULT_DEPTH
