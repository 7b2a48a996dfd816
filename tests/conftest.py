"""Shared fixtures: synthetic media made by the tests, and the optional real media in ../shared."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from lipdub.media.audio import Audio, save_wav
from lipdub.media.write import VideoWriter, codec_for

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

#: Size of one bit cell of the frame counter drawn into synthetic frames (survives H.264).
CELL = 8
COUNTER_BITS = 12


def shared_data() -> Path:
    """../shared/data, or skip the test with the reason."""
    if not (SHARED_DATA / "clips.tsv").is_file():
        pytest.skip(f"real media not available ({SHARED_DATA} is absent)")
    return SHARED_DATA


def counter_frame(index: int, width: int = 128, height: int = 96) -> np.ndarray:
    """A frame with ``index`` drawn as a row of black/white cells, over a smooth gradient."""
    y, x = np.mgrid[0:height, 0:width]
    frame = np.stack([(x * 2) % 256, (y * 2) % 256, np.full_like(x, 128)], -1).astype(np.uint8)
    for bit in range(COUNTER_BITS):
        value = 255 if (index >> bit) & 1 else 0
        frame[CELL : 2 * CELL, bit * CELL : (bit + 1) * CELL] = value
    return frame


def read_counter(frame: np.ndarray) -> int:
    """The index drawn by :func:`counter_frame` (robust to lossy compression)."""
    index = 0
    for bit in range(COUNTER_BITS):
        cell = frame[CELL + 2 : 2 * CELL - 2, bit * CELL + 2 : (bit + 1) * CELL - 2]
        if cell.mean() > 127:
            index |= 1 << bit
    return index


def make_video(
    path: Path,
    frames: int,
    fps: Fraction,
    codec: str = "h264",
    audio: Audio | None = None,
    timecode: str | None = None,
    size: tuple[int, int] = (128, 96),
) -> Path:
    """Write a synthetic clip whose frames carry their own index."""
    with VideoWriter(path, size[0], size[1], fps, codec_for(codec, path), timecode, audio) as w:
        for i in range(frames):
            w.write(counter_frame(i, *size))
    return path


def tone(seconds: float, rate: int = 48_000, freq: float = 440.0, channels: int = 1) -> Audio:
    """A sine tone with a slow amplitude envelope (speech-like on/off rhythm)."""
    t = np.arange(round(seconds * rate)) / rate
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    wave = (0.3 * env * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return Audio(np.repeat(wave[None], channels, 0), rate)


@pytest.fixture
def clip_25(tmp_path: Path) -> Path:
    """A 50-frame 25 fps H.264 clip with a frame counter and no audio."""
    return make_video(tmp_path / "clip25.mov", 50, Fraction(25))


@pytest.fixture
def dub_wav(tmp_path: Path) -> Path:
    """A 2 s mono 48 kHz WAV."""
    path = tmp_path / "dub.wav"
    save_wav(tone(2.0), path)
    return path
