"""The dub follows the picture: a sub-shot of `range: auto` plays the dub from its own first
frame, not from the dub's start."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.media.audio import Audio, load_audio, samples_for_frames, save_wav
from lipdub.media.write import VideoWriter, codec_for
from tests.conftest import counter_frame

FPS = Fraction(25)
RATE = 48_000
#: PCM in the MKV is 24-bit: one step is 2**-23 of full scale; half a step is the rounding.
PCM24_STEP = 2.0**-23


def _reel(path: Path) -> None:
    """60 frames: 30 of one picture, then 30 of a very different one (a hard cut at 30)."""
    with VideoWriter(path, 128, 96, FPS, codec_for("ffv1", path)) as w:
        for i in range(60):
            frame = counter_frame(i)
            w.write(frame if i < 30 else np.ascontiguousarray(255 - frame[:, :, ::-1]))


def test_a_range_auto_sub_shot_plays_the_dub_from_its_own_start(tmp_path: Path):
    _reel(tmp_path / "reel.mkv")
    rng = np.random.default_rng(3)  # Noise: no two stretches of it are alike.
    dub = (0.25 * rng.standard_normal(samples_for_frames(60, FPS, RATE))).astype(np.float32)
    save_wav(Audio(dub[None], RATE), tmp_path / "d.wav")
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\n[stages]\ngenerator = "passthrough"\n'
        '[settings]\nqc = false\ncodec = "ffv1"\ncontainer = ".mkv"\n'
    )
    (tmp_path / "shots.yaml").write_text(
        "shots:\n  - {id: r, source: reel.mkv, range: auto, dubs: [{name: de, audio: d.wav}]}\n"
    )
    shots = str(tmp_path / "shots.yaml")
    listing = CliRunner().invoke(main, ["render", shots, "--list", "--json"])
    assert listing.exit_code == 0, listing.output
    jobs = [json.loads(x) for x in listing.output.strip().splitlines()]
    assert [(j["in"], j["out"]) for j in jobs] == [(0, 30), (30, 60)]
    res = CliRunner().invoke(main, ["render", shots, "--json"])
    assert res.exit_code == 0, res.output
    wav = load_audio(tmp_path / "d.wav").samples[0]  # The dub as the renderer reads it.
    heard = []
    for job in jobs:
        a = samples_for_frames(job["in"], FPS, RATE)
        b = samples_for_frames(job["out"], FPS, RATE)
        got = load_audio(Path(job["outputs"][0])).samples[0]
        assert len(got) == b - a
        np.testing.assert_allclose(got, wav[a:b], rtol=0, atol=PCM24_STEP)
        heard.append(got)
    # Laid end to end, the sub-shots carry the whole dub.
    np.testing.assert_allclose(np.concatenate(heard), wav, rtol=0, atol=PCM24_STEP)
    warnings = [json.loads(x)["message"] for x in res.output.splitlines() if '"warning"' in x]
    assert not [w for w in warnings if "trimmed" in w]  # The whole dub fits the whole reel.
