"""No ghost mouth: a face panned out of the frame is not pasted on where the landmarks cannot
follow it (issue 17), and the render says how many frames it left alone."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.analysis.trust import trusted_frames
from lipdub.cli import main
from lipdub.media.read import open_video
from lipdub.media.write import VideoWriter, codec_for
from tests.conftest import shared_data

pytestmark = [pytest.mark.shared, pytest.mark.slow]

CLIP = "SadTalker__examples_ref_video_WDA_AlexandriaOcasioCortez_000.mp4"  # 512 px, 25 fps.
START, FRAMES, STEP = 25, 40, 55  # The camera pans from frame 25 at 55 px a frame.


def make_pan(path: Path) -> Path:
    with open_video(shared_data() / "clips" / CLIP) as src:
        frames = list(src.frames(0, FRAMES))
    h, w = frames[0].shape[:2]
    codec = codec_for("ffv1", path)
    with VideoWriter(path, w, h, Fraction(25), codec, None, None) as out:
        for i, f in enumerate(frames):
            shift = max(0, i - START) * STEP
            g = np.full_like(f, 40)
            if shift < w:
                g[:, shift:] = f[:, : w - shift]
            out.write(g)
    return path


def test_a_face_leaving_the_frame_is_left_alone(tmp_path: Path) -> None:
    video = make_pan(tmp_path / "pan.mkv")
    dub = shared_data() / "audio" / "dreamtalk__data_audio_German1.wav"
    out = tmp_path / "pan_de.mkv"
    args = ["render", "--video", str(video), "--audio", str(dub), "-o", str(out)]
    args += ["--generator", "stylesync", "--weights", "random-init", "--json"]
    args += ["--project", str(tmp_path)]
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\npreset = "draft"\ndevice = "cpu"\n'
        '[settings]\ncodec = "ffv1"\nrest_on_silence = false\n'
    )
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    events = [json.loads(x) for x in res.output.splitlines() if x.startswith("{")]
    warnings = [e["message"] for e in events if e["event"] == "warning"]
    notes = [w for w in warnings if "untouched" in w]
    assert len(notes) == 1, notes

    analysis = analyze_shot(video, cache_dir=tmp_path / ".lipdub" / "cache")
    (track,) = analysis.tracks
    trusted = trusted_frames(track, (analysis.height, analysis.width, 3))
    assert trusted[:START].all() and not trusted[-1]  # The face is lost as it reaches the edge.
    assert f"{int((~trusted).sum())} frame(s)" in notes[0]
    with open_video(video) as a, open_video(out) as b:
        for i, (before, after) in enumerate(zip(a.frames(), b.frames(), strict=True)):
            j = track.at(i)
            if j is None or not trusted[j]:
                assert np.array_equal(after, before), f"frame {i} was pasted on"
            elif i < START:
                assert not np.array_equal(after, before), f"frame {i} was not dubbed"
