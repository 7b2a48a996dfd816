"""Real footage from ../shared/data: every clip decodes with the container's frame count, and a
passthrough render keeps frame count, rate and carries the dub."""

from __future__ import annotations

import csv
from pathlib import Path

import av
import pytest
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.errors import MediaError
from lipdub.media.audio import load_audio
from lipdub.media.read import open_video, probe
from tests.conftest import shared_data

pytestmark = pytest.mark.shared


def _clips() -> list[dict[str, str]]:
    data = shared_data()
    with open(data / "clips.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_every_shared_clip_decodes_with_the_container_frame_count():
    data = shared_data()
    checked = 0
    for row in _clips():
        path = data / row["file"]
        with av.open(str(path)) as c:
            declared = c.streams.video[0].frames
        try:
            src = open_video(path)
        except MediaError as exc:  # Only a genuinely variable-rate clip may be refused.
            assert "variable frame rate" in str(exc), row["file"]
            with open_video(path, conform=True) as src:
                assert src.info.frame_count >= declared
            continue
        with src:
            n = src.info.frame_count
            assert n == declared, row["file"]
            assert abs(float(src.info.fps) - float(row["fps"])) < 0.01, row["file"]
            tail = list(src.frames(max(0, n - 2), n))
            assert len(tail) == min(2, n)
            assert tail[-1].shape == (src.info.height, src.info.width, 3)
        checked += 1
    assert checked >= 50


def test_every_frame_of_a_shared_clip_decodes_in_order():
    data = shared_data()
    path = data / "clips" / "Talking-Face_PC-AVS__misc_Input_00098.mp4"
    with open_video(path) as src:
        whole = sum(1 for _ in src.frames())
        assert whole == src.info.frame_count
        middle = list(src.frames(100, 110))
        again = list(src.frames(100, 110))
    assert all((a == b).all() for a, b in zip(middle, again, strict=True))


def test_passthrough_render_of_a_shared_clip(tmp_path: Path):
    data = shared_data()
    video = data / "clips" / "SadTalker__examples_ref_video_WDA_AlexandriaOcasioCortez_000.mp4"
    dub = data / "audio" / "dreamtalk__data_audio_German1.wav"
    out = tmp_path / "aoc_de.mov"
    res = CliRunner().invoke(
        main,
        [
            "render",
            "--video",
            str(video),
            "--audio",
            str(dub),
            "-o",
            str(out),
            "--generator",
            "passthrough",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    src, got = probe(video), probe(out)
    assert (got.frame_count, got.fps, got.width, got.height) == (
        src.frame_count,
        src.fps,
        src.width,
        src.height,
    )
    dub_audio, out_audio = load_audio(dub), load_audio(out)
    assert out_audio.rate == dub_audio.rate  # The dub's own rate is kept in MOV.
    assert abs(out_audio.duration_s - src.duration_s) < 1 / out_audio.rate * 2
