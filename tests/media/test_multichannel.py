"""A 5.1 dub keeps its six channels where the container can carry them (MOV, MKV: PCM; MP4:
AAC 5.1); a layout the output cannot carry is downmixed to stereo with a warning, never cut to
its first two channels."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.media.audio import Audio, load_audio, save_wav
from lipdub.media.mux import fit_channels
from tests.conftest import make_video

RATE = 48_000
FREQS = (300.0, 500.0, 700.0, 80.0, 1100.0, 1300.0, 1500.0)  # One tone a channel (LFE: low).


def _tones(channels: int, seconds: float = 1.0) -> Audio:
    t = np.arange(round(seconds * RATE)) / RATE
    return Audio(
        np.stack([0.1 * np.sin(2 * np.pi * f * t) for f in FREQS[:channels]]).astype(np.float32),
        RATE,
    )


def _peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.argmax(spectrum) * RATE / len(x))


@pytest.mark.parametrize("suffix", [".mov", ".mp4"])
def test_a_51_dub_keeps_its_six_channels(tmp_path: Path, suffix: str):
    make_video(tmp_path / "in.mov", 25, Fraction(25))
    save_wav(_tones(6), tmp_path / "dub51.wav")
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\n[stages]\ngenerator = "passthrough"\n[settings]\nqc = false\n'
    )
    out = tmp_path / f"out{suffix}"
    res = CliRunner().invoke(
        main,
        ["render", "--video", str(tmp_path / "in.mov"), "--audio", str(tmp_path / "dub51.wav"),
         "-o", str(out), "--json", "--project", str(tmp_path)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    got = load_audio(out)
    assert got.channels == 6
    # Each channel is still its own tone (AAC is lossy: the peak, not the samples).
    assert [round(_peak_hz(c)) for c in got.samples] == [round(f) for f in FREQS[:6]]
    warnings = [json.loads(x)["message"] for x in res.output.splitlines() if '"warning"' in x]
    assert not [w for w in warnings if "downmixed" in w]


def test_channels_the_output_cannot_carry_are_downmixed_with_a_warning(tmp_path: Path):
    seven = _tones(7)
    same, none = fit_channels(tmp_path / "out.mkv", seven)  # PCM: 6.1 as it is.
    assert same is seven and none is None
    mixed, warning = fit_channels(tmp_path / "out.mp4", seven)  # AAC has no 6.1 layout.
    assert mixed.channels == 2 and warning is not None and "downmixed to stereo" in warning
    # Folded in, not dropped: the centre's tone (700 Hz, channel 3) is in both sides.
    for side in mixed.samples:
        spectrum = np.abs(np.fft.rfft(side))
        assert spectrum[round(700.0 * len(side) / RATE)] > 0.1 * spectrum.max()
