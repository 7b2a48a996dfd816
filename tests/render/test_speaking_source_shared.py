"""Every frame where the dub speaks but the picture keeps the source mouth is counted in one
warning, with why and where (a face lost for a while used to pass without a word)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.media import audio as audio_io
from lipdub.media.read import open_video
from lipdub.media.write import VideoWriter, codec_for
from tests.conftest import shared_data

pytestmark = [pytest.mark.shared, pytest.mark.slow]

CLIP = "Talking-Face_PC-AVS__misc_Input_00098.mp4"  # Test split, 224×224, 25 fps.
DUB = "dreamtalk__data_audio_German1.wav"
LOST = range(25, 41)  # Frames whose picture is grey: no face to find there.


def test_frames_where_the_dub_speaks_over_the_source_mouth_are_counted(tmp_path: Path):
    data = shared_data()
    reel = tmp_path / "reel.mkv"
    with (
        open_video(data / "clips" / CLIP) as src,
        VideoWriter(reel, 224, 224, Fraction(25), codec_for("ffv1", reel)) as out,
    ):
        for i, frame in enumerate(src.frames(0, 60)):
            out.write(np.full_like(frame, 128) if i in LOST else np.ascontiguousarray(frame))
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\n[settings]\ncodec = "ffv1"\ncontainer = ".mkv"\nqc = false\n'
        # The two short tracks round the lost face are too thin for a bank: they are dubbed by
        # the fallback (else they keep the source whole, and are reported as not dubbed).
        'fallback = "stylesync"\n'
        "[stage_options.generator]\nmin_frames = 10\n"
    )
    dub = data / "audio" / DUB
    res = CliRunner().invoke(
        main,
        ["render", "--video", str(reel), "--audio", str(dub), "-o", str(tmp_path / "o.mkv"),
         "--json", "--project", str(tmp_path)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    warnings = [json.loads(x)["message"] for x in res.output.splitlines() if '"warning"' in x]
    (kept,) = [w for w in warnings if "where the dub speaks" in w]
    loud = audio_io.loudness_per_frame(
        audio_io.to_model_audio(audio_io.load_audio(dub)), 60, Fraction(25)
    )
    speaking = [i for i in LOST if loud[i] >= audio_io.SILENT_DB]
    assert speaking  # The dub speaks over the lost face (German1 is one long sentence).
    assert f"{len(speaking)} no tracked face" in kept
    if speaking == list(LOST):
        assert f"frames {LOST[0]}-{LOST[-1]}" in kept
