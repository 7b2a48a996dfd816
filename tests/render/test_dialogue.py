"""A dialogue shot: two actors side by side, each driven by their own dub stem.

A spy generator (a project-local plugin) records which audio reached which actor's track, so the
test checks the routing itself: stems to the right faces by identity, the output carrying the mix.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.media.audio import Audio, load_audio, save_wav
from lipdub.media.read import open_video
from lipdub.media.write import VideoWriter, codec_for
from tests.conftest import shared_data

pytestmark = [pytest.mark.shared, pytest.mark.slow]

SPY = """
import json
import numpy as np
from lipdub.hookspecs import hookimpl
from lipdub.stages import StageChoice

class Spy:
    resolution = 128
    def generate(self, clip, progress=None):
        spectrum = np.abs(np.fft.rfft(clip.audio_16k))
        peak_hz = float(np.argmax(spectrum) * 16000 / len(clip.audio_16k))
        with open("spy.jsonl", "a") as f:
            f.write(json.dumps({"actor": clip.actor, "peak_hz": peak_hz,
                                "frames": len(clip.crops)}) + "\\n")
        for crop in clip.crops:
            yield np.clip(crop.astype(int) + 60, 0, 255).astype(np.uint8)

@hookimpl
def lipdub_generators():
    return [StageChoice("spy", lambda options: Spy(), "records the audio per actor")]
"""


def _tone(freq: float, seconds: float, rate: int = 48_000) -> Audio:
    t = np.arange(round(seconds * rate)) / rate
    return Audio((0.2 * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None], rate)


def test_each_actor_is_driven_by_their_own_stem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = shared_data() / "clips"
    left_src = data / "Talking-Face_PC-AVS__misc_Input_00098.mp4"  # 224×224, 25 fps.
    right_src = data / "Talking-Face_PC-AVS__misc_Input_00002.mp4"  # Another speaker.
    frames = 40
    with open_video(left_src) as a, open_video(right_src) as b:
        pairs = list(zip(a.frames(0, frames), b.frames(0, frames), strict=True))
    (tmp_path / "footage").mkdir()
    with VideoWriter(
        tmp_path / "footage" / "two.mkv",
        448,
        224,
        Fraction(25),
        codec_for("ffv1", tmp_path / "x.mkv"),
    ) as w:
        for left, right in pairs:
            w.write(np.concatenate([left, right], axis=1))
    seconds = frames / 25
    save_wav(_tone(300, seconds), tmp_path / "left.wav")
    save_wav(_tone(700, seconds), tmp_path / "right.wav")
    (tmp_path / "lipdub_plugins.py").write_text(SPY)
    (tmp_path / "lipdub.toml").write_text(
        f'[project]\nname = "dialogue"\n[stages]\ngenerator = "spy"\n'
        f'[settings]\ncodec = "ffv1"\ncontainer = ".mkv"\n'
        f'[actors.ann]\nfootage = ["{left_src}"]\n[actors.bob]\nfootage = ["{right_src}"]\n'
    )
    (tmp_path / "shots.yaml").write_text(
        "shots:\n  - id: d1\n    source: footage/two.mkv\n    actors: [ann, bob]\n"
        "    dubs:\n      - name: de\n        stems: {ann: left.wav, bob: right.wav}\n"
    )
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["render", "shots.yaml", "--json"])
    assert res.exit_code == 0, res.output
    calls = [json.loads(x) for x in (tmp_path / "spy.jsonl").read_text().splitlines()]
    routed = {c["actor"]: round(c["peak_hz"]) for c in calls}
    assert routed == {"ann": 300, "bob": 700}
    mix = load_audio(tmp_path / "renders" / "d1_de.mkv")
    spectrum = np.abs(np.fft.rfft(mix.samples[0]))
    freqs = np.fft.rfftfreq(mix.samples.shape[1], 1 / mix.rate)
    strongest = sorted(freqs[np.argsort(spectrum)[-2:]].round())
    assert strongest == [300.0, 700.0]  # The output carries both stems summed.
    with open_video(tmp_path / "renders" / "d1_de.mkv") as out:
        middle = next(out.frames(20, 21))
    before = np.concatenate(pairs[20], axis=1)
    changed = np.abs(middle.astype(int) - before).sum(-1) > 0
    assert changed[:, :224].any() and changed[:, 224:].any()  # Both faces were pasted.
