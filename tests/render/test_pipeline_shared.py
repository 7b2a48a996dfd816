"""The pipelined render on real footage: the serial path's bytes and QC numbers, and QC measures
in exactly the masks the paste computed (kept for it, not computed again)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.eval.qc import BORDER_HIGH, BORDER_LOW, INSIDE, mask_zones
from lipdub.render.face_work import FaceWork
from lipdub.render.frame_pass import SERIAL_ENV
from tests.conftest import REPO
from tests.render.projects import one_shot_project

pytestmark = [pytest.mark.shared, pytest.mark.slow]

CLIP = "SadTalker__examples_ref_video_WDA_AlexandriaOcasioCortez_000.mp4"  # 512 px, 25 fps.
DUB = "dreamtalk__data_audio_German1.wav"
FRAMES = 60
#: How far two computations of one blend mask may differ (float32 values in [0, 1]).
MASK_ULPS = 1e-6


def test_pipelined_render_equals_the_serial_one_and_qc_reuses_the_masks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_shot_project(tmp_path, CLIP, DUB, FRAMES)
    checked: list[int] = []
    original = FaceWork.first_region

    def compared(self: FaceWork, i: int, shape: tuple[int, ...]):  # type: ignore[no-untyped-def]
        kept = original(self, i, shape)
        fresh = self.region(self.tracks[0], i, shape)  # On lipdub.CV_THREADS, as the paste.
        assert (kept is None) == (fresh is None), f"frame {i}"
        if kept is not None and fresh is not None:
            assert kept[0] == fresh[0], f"frame {i}: box"
            # The same mask: the paste's, not another one. Computing it twice agrees to a float32
            # ulp only (1.2e-7 apart on some pixels of some frames, run to run, serial too), so
            # the zones QC keeps must match wherever the fresh mask is not that close to one of
            # their thresholds: a far smaller allowance than two masks of other frames could meet.
            assert kept[1].shape == fresh[1].shape, f"frame {i}: mask shape"
            near = np.zeros(fresh[1].shape, bool)
            for t in (BORDER_LOW, INSIDE, BORDER_HIGH):
                near |= np.abs(fresh[1] - t) <= MASK_ULPS
            same = kept[1] == mask_zones(fresh[1])
            assert (same | near).all(), f"frame {i}: mask"
            checked.append(i)
        return kept

    monkeypatch.setattr(FaceWork, "first_region", compared)
    monkeypatch.delenv(SERIAL_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["render", "shots.yaml", "--json"])
    assert res.exit_code == 0, res.output
    assert len(checked) >= FRAMES // 2  # QC measured its seams in the kept masks.
    finished = [json.loads(x) for x in res.output.splitlines() if '"finished"' in x]
    timing = finished[-1]["data"]["timing"]["de"]["encode_pass"]
    assert timing["workers"] >= 1 and timing["encode"]["items"] == FRAMES

    out = tmp_path / "renders" / "s1_de.mov"
    qc = tmp_path / "renders" / ".qc" / "s1_de.mov.json"
    piped_sha, piped_qc = hashlib.sha256(out.read_bytes()).hexdigest(), json.loads(qc.read_text())
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "LIPDUB_DISABLE_PLUGIN_AUTOLOAD": "1",
        SERIAL_ENV: "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "lipdub", "render", "shots.yaml", "--json", "--force"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert '"workers": 1' in done.stdout
    assert hashlib.sha256(out.read_bytes()).hexdigest() == piped_sha
    assert json.loads(qc.read_text()) == piped_qc
