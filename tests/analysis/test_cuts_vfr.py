"""`range: auto` on a variable-frame-rate source with ``conform_vfr``: the cuts are found on the
conformed frames, numbered as the render reads them (not refused, not numbered by decode order)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.media.audio import save_wav
from tests.conftest import tone

SIZE = 128
FRAMES = 60  # Decoded frames; the cut is before decoded frame CUT.
CUT = 30
#: Slots on the 25 fps grid (time base 1/100: 4 ticks a slot): 10 and 11 are missing (the
#: conform repeats frame 9), frame 40's timestamp is 1 tick off the grid.
SLOTS = [*range(10), *range(12, FRAMES + 2)]


def _picture(i: int, rng: np.random.Generator) -> np.ndarray:
    """Two unrelated scenes (dark cool texture, then bright warm one), each slowly moving."""
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    if i < CUT:
        base = np.stack([(x + i) % 64, (y * 2) % 96, np.full_like(x, 90)], -1)
    else:
        base = np.stack([np.full_like(x, 230), (x * 3 + i) % 200, (y + 2 * i) % 120], -1)
    return np.clip(base + rng.integers(0, 8, base.shape), 0, 255).astype(np.uint8)


def _vfr_reel(path: Path) -> Path:
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=100)
        s.width, s.height, s.pix_fmt = SIZE, SIZE, "bgr0"
        for i, slot in enumerate(SLOTS):
            f = av.VideoFrame.from_ndarray(_picture(i, rng), format="rgb24")
            f.pts, f.time_base = 4 * slot + (1 if i == 40 else 0), Fraction(1, 100)
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    return path


def test_range_auto_cuts_a_conformed_vfr_source_on_the_render_s_frame_numbers(tmp_path: Path):
    _vfr_reel(tmp_path / "reel.mkv")
    save_wav(tone(2.5), tmp_path / "d.wav")
    (tmp_path / "lipdub.toml").write_text('[project]\nname = "t"\n[settings]\nconform_vfr = true\n')
    shots = tmp_path / "shots.yaml"
    shots.write_text(
        "shots:\n  - {id: r, source: reel.mkv, range: auto, dubs: [{name: de, audio: d.wav}]}\n"
    )
    res = CliRunner().invoke(main, ["render", str(shots), "--list", "--json"])
    assert res.exit_code == 0, res.output
    jobs = [json.loads(x) for x in res.output.splitlines() if x.startswith("{")]
    # Decoded frame 30 sits on slot 32: two slots were filled before it.
    assert [(j["id"], j["in"], j["out"]) for j in jobs] == [
        ("r.1", 0, CUT + 2),
        ("r.2", CUT + 2, SLOTS[-1] + 1),
    ]
    res = CliRunner().invoke(main, ["analyze", str(shots), "--cuts", "--json"])
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["in"] for x in res.output.splitlines()] == [0, CUT + 2]
