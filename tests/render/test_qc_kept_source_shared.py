"""QC reads the source pixels the paste kept instead of decoding the source again (issue 26): the
same numbers, thumbnails and warnings as QC that decodes it, with no source frame decoded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.eval import qc as qc_module
from lipdub.render import pipeline
from lipdub.render.face_work import FaceWork
from tests.render.projects import one_shot_project

pytestmark = [pytest.mark.shared, pytest.mark.slow]

CLIP = "SadTalker__examples_ref_video_WDA_AlexandriaOcasioCortez_000.mp4"  # 512 px, 25 fps.
DUB = "dreamtalk__data_audio_German1.wav"
FRAMES = 50


def _render(root: Path) -> tuple[dict[str, Any], bytes, bytes]:
    res = CliRunner().invoke(main, ["render", "shots.yaml", "--json", "--force"])
    assert res.exit_code == 0, res.output
    qc_dir = root / "renders" / ".qc"
    sidecar = json.loads((qc_dir / "s1_de.mov.json").read_text())
    return (
        sidecar,
        (qc_dir / "s1_de_before.png").read_bytes(),
        (root / "renders" / "s1_de.mov").read_bytes(),
    )


def test_qc_on_the_kept_source_equals_qc_on_the_decoded_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_shot_project(tmp_path, CLIP, DUB, FRAMES)
    monkeypatch.chdir(tmp_path)
    decoded: list[int] = []
    original = qc_module._SourceFrames.frame

    def frame(self: Any, i: int) -> np.ndarray | None:
        decoded.append(i)
        return original(self, i)

    missing: list[int] = []  # Frames the paste kept no source of (it did not paste there).
    first_source = FaceWork.first_source

    def source(self: FaceWork, i: int) -> Any:
        found = first_source(self, i)
        if found is None:
            missing.append(i)
        return found

    monkeypatch.setattr(qc_module._SourceFrames, "frame", frame)
    monkeypatch.setattr(FaceWork, "first_source", source)
    kept, kept_thumb, kept_video = _render(tmp_path)
    # Only frames the paste kept nothing of were decoded (not the thumbnail's, nor the rest).
    assert set(decoded) <= set(missing) and len(decoded) < FRAMES // 5

    # The same render with nothing kept: QC decodes the source, as it did before.
    monkeypatch.setattr(FaceWork, "first_source", lambda self, i: None)
    monkeypatch.setattr(pipeline, "_before_frame", lambda shot, audio: None)
    fresh, fresh_thumb, fresh_video = _render(tmp_path)
    assert len(decoded) >= FRAMES // 2  # Now QC decoded the source.
    assert fresh_video == kept_video
    assert fresh == kept
    assert fresh_thumb == kept_thumb
    assert kept["seam_ratio"] is not None and kept["detail_ratio"] is not None
