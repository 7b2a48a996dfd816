"""Validate first, then render: what can be checked before the first frame is checked for every
job (by --list too) and refused with exit 2 and one line naming the file, the key and the fix."""

from __future__ import annotations

import json
import wave
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.media.audio import Audio, save_wav
from lipdub.media.read import probe
from tests.conftest import make_video, tone

SHOTS = """\
shots:
  - id: a
    source: in.mov
    dubs: [{name: de, audio: dub.wav}]
  - id: b
    source: in.mov
    dubs: [{name: de, audio: dub.wav}]
    settings:
      blender: feather
"""


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def refused(res, *words: str) -> None:
    """Exit 2 with one line (the error) that contains ``words``; nothing rendered."""
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and res.output.startswith("error: "), res.output
    for word in words:
        assert word in res.output, res.output
    assert '"started"' not in res.output


@pytest.fixture
def reel(tmp_path: Path) -> Path:
    make_video(tmp_path / "in.mov", 50, Fraction(25))
    save_wav(tone(2.0), tmp_path / "dub.wav")
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\n[stages]\ngenerator = "passthrough"\n[settings]\nqc = false\n'
    )
    (tmp_path / "shots.yaml").write_text(SHOTS)
    return tmp_path


def render(reel: Path, *args: str):
    return run("render", str(reel / "shots.yaml"), "--json", *args)


def one_clip(tmp_path: Path, audio: Path, *args: str):
    video = make_video(tmp_path / "clip.mov", 50, Fraction(25))
    out = tmp_path / "out.mov"
    res = run("render", "--video", str(video), "--audio", str(audio), "-o", str(out), *args)
    return res, out


def test_an_unknown_blender_is_exit_2_before_any_output_even_with_outputs_present(reel: Path):
    shots = reel / "shots.yaml"
    assert render(reel).exit_code == 0  # Both shots rendered once, with feather.
    shots.write_text(SHOTS.replace("blender: feather", "blender: poison"))
    for res in (render(reel), render(reel, "--list"), render(reel, "--shot", "b")):
        refused(res, f"{shots}:9", "shot 'b'", "no blender called 'poison'", "feather")
    (reel / "renders" / "a_de.mov").unlink()
    refused(render(reel), "poison")
    assert not (reel / "renders" / "a_de.mov").exists()  # Shot a did not render either.


def test_an_unknown_stage_choice_on_the_command_line_names_the_option(reel: Path):
    refused(render(reel, "--generator", "stylesink"), "--generator", "did you mean 'stylesync'")
    refused(render(reel, "--executor", "slurm", "--list"), "--executor", "no executor")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a CPU machine")
def test_cuda_without_cuda_is_exit_2(reel: Path, tmp_path: Path):
    refused(render(reel, "--device", "cuda"), "--device", "CUDA is not available", "cpu")
    res, out = one_clip(tmp_path, reel / "dub.wav", "--device", "cuda:1", "--json")
    refused(res, "--device")
    assert not out.exists()
    # The farm lists jobs on a dispatcher that need not have the GPU its workers have.
    assert render(reel, "--device", "cuda", "--list").exit_code == 0


def test_bad_weights_are_exit_2_without_loading_a_model(reel: Path, tmp_path: Path):
    refused(render(reel, "--weights", "lite-v9"), "--weights", "lite-v9", "lite-v4")
    missing = tmp_path / "nowhere.safetensors"
    refused(render(reel, "--weights", str(missing), "--list"), "--weights", "not found")
    lone = tmp_path / "lone.safetensors"
    lone.write_bytes(b"weights without their JSON")
    refused(render(reel, "--weights", str(lone)), "--weights", "lone.json is missing")
    (reel / "lipdub.toml").write_text(
        (reel / "lipdub.toml").read_text().replace("[project]\n", '[project]\nweights = "x"\n')
    )
    refused(render(reel), "lipdub.toml (weights)", "'x'")


def test_a_dub_of_the_wrong_length_under_audio_fit_error_is_exit_2_up_front(reel: Path):
    shots = reel / "shots.yaml"  # in.mov is 2 s; shot a is all of it, b a 1 s part.
    shots.write_text(
        SHOTS.replace(
            "  - id: b\n    source: in.mov\n", "  - id: b\n    source: in.mov\n    in: 25\n"
        )
    )
    for res in (render(reel, "--audio-fit", "error"), render(reel, "--audio-fit", "pad", "--list")):
        refused(res, f"{shots}:5", "shot 'b' dub 'de'", "1.000 s longer", "audio_fit: trim")
    assert not (reel / "renders").exists()
    assert render(reel, "--audio-fit", "error", "--shot", "a").exit_code == 0  # 2 s: it fits.
    shots.write_text(
        SHOTS.replace("audio: dub.wav}]\n  - id: b", "audio: dub.wav, offset: -0.5}]\n  - id: b")
    )
    refused(render(reel, "--audio-fit", "trim", "--shot", "a"), "0.500 s shorter", "pad")


def test_an_audio_file_without_sound_is_exit_2(reel: Path, tmp_path: Path):
    silent_video = make_video(tmp_path / "picture_only.mov", 10, Fraction(25))
    res, out = one_clip(tmp_path, silent_video)
    refused(res, "--audio", "picture_only.mov", "has no audio stream", "wav, flac")
    assert not out.exists()
    junk = reel / "dub.wav"
    junk.write_bytes(b"junk" * 100)
    refused(render(reel, "--list"), "shots.yaml:2", "shot 'a' dub 'de'", "dub.wav")


def test_an_empty_dub_is_exit_2_a_digitally_silent_one_is_warned_up_front(
    reel: Path, tmp_path: Path
):
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as w:  # A valid header and not one sample.
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48_000)
    res, out = one_clip(tmp_path, empty)
    refused(res, "--audio", "empty.wav", "the audio stream is empty")
    assert not out.exists()
    # All zeros is allowed (every mouth rests: lipdub.analysis.rest) but said before any frame.
    silence = tmp_path / "silence.wav"
    save_wav(Audio(np.zeros((1, 96_000), np.float32), 48_000), silence)
    res, out = one_clip(tmp_path, silence, "--json")
    assert res.exit_code == 0, res.output
    first = json.loads(res.output.splitlines()[0])
    assert first["event"] == "warning" and "silence.wav is digitally silent" in first["message"]
    (reel / "lipdub.toml").write_text(
        (reel / "lipdub.toml").read_text() + '[actors.anna]\nfootage = ["in.mov"]\n'
        '[actors.bob]\nfootage = ["in.mov"]\n'
    )
    (reel / "silence.wav").write_bytes(silence.read_bytes())
    (reel / "shots.yaml").write_text(
        "shots:\n  - id: a\n    source: in.mov\n    actors: [anna, bob]\n    dubs:\n"
        "      - {name: de, stems: {anna: dub.wav, bob: silence.wav}}\n"
    )
    res = render(reel, "--list")
    assert res.exit_code == 0, res.output
    (job,) = [json.loads(x) for x in res.output.splitlines()]
    assert len(job["warnings"]) == 1 and "stem bob" in job["warnings"][0]
    assert "that actor's mouth will not speak" in job["warnings"][0]


def test_an_output_name_the_codec_cannot_fill_is_exit_2_up_front(reel: Path):
    shots = reel / "shots.yaml"
    text = SHOTS.replace("blender: feather", "codec: prores_hq")
    shots.write_text(
        text.replace("dub.wav}]\n    settings", "dub.wav, output: b.mp4}]\n    settings")
    )
    for res in (render(reel), render(reel, "--list")):
        refused(res, f"{shots}:9", "shot 'b'", "'prores_hq' needs one of .mov (got .mp4)")
    assert not (reel / "renders" / "a_de.mov").exists()  # Shot a did not render either.


def test_one_clip_output_suffix_picks_a_codec_that_fits_and_says_so(tmp_path: Path):
    """A project whose preset delivers ProRes: `-o x.mp4` gets H.264 with a warning in the
    events and the finished report; `.mov` keeps ProRes; a suffix no codec fits is exit 2."""
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\npreset = "feature"\n[stages]\ngenerator = "passthrough"\n'
        "[settings]\nqc = false\n"
    )
    dub = tmp_path / "dub.wav"
    save_wav(tone(2.0), dub)
    args = ["--project", str(tmp_path), "--json"]
    res, out = one_clip(tmp_path, dub, *args)
    assert res.exit_code == 0, res.output
    assert probe(out).codec == "prores"
    mp4 = tmp_path / "out.mp4"
    video = str(tmp_path / "clip.mov")
    res = run("render", "--video", video, "--audio", str(dub), "-o", str(mp4), *args)
    assert res.exit_code == 0, res.output
    assert probe(mp4).codec == "h264"
    events = [json.loads(x) for x in res.output.splitlines() if x.startswith("{")]
    note = "codec 'h264' chosen for .mp4"
    assert any(e["event"] == "warning" and note in e["message"] for e in events), res.output
    finished = [e for e in events if e["event"] == "finished"]
    assert any(note in w for w in finished[0]["data"]["warnings"]), finished
    res = run("render", "--video", video, "--audio", str(dub), "-o", str(tmp_path / "o.avi"))
    refused(res, "o.avi", "needs one of .mp4, .mov, .mkv (got .avi)")


def test_the_exemplar_generator_without_a_driver_is_exit_2_up_front(
    reel: Path, monkeypatch: pytest.MonkeyPatch
):
    """A weights manifest without a default_driver (a studio's own) and no exemplar.driver:
    refused before any frame, naming the generator setting and the fix."""
    import dataclasses

    from lipdub.model import checkpoint
    from lipdub.render import fingerprint, jobs

    bare = dataclasses.replace(checkpoint.load_manifest(), default_driver=None)
    for module in (fingerprint, jobs):
        monkeypatch.setattr(module, "load_manifest", lambda path=None: bare)
    for res in (
        render(reel, "--generator", "exemplar"),
        render(reel, "--generator", "exemplar", "--list"),
    ):
        refused(res, "--generator", "no default_driver", "stage_options.generator.driver")
    assert not (reel / "renders" / "a_de.mov").exists()


def test_a_misspelt_stage_option_is_exit_2_up_front_with_its_place(reel: Path):
    shots = reel / "shots.yaml"
    shots.write_text(SHOTS.replace("blender: feather", "stage_options: {blender: {colr: 1}}"))
    for res in (render(reel), render(reel, "--list")):
        refused(res, f"{shots}:9", "blender 'feather' has no option 'colr'", "color_match")


def test_a_block_written_for_another_choice_is_refused_and_can_be_dropped(reel: Path):
    toml = (
        (reel / "lipdub.toml")
        .read_text()
        .replace("[stages]\n", '[stages]\nblender = "laplacian"\n')
    )
    (reel / "lipdub.toml").write_text(toml + "[stage_options.blender]\nlevels = 3\n")
    refused(render(reel, "--list"), "blender 'feather' has no option 'levels'", "{blender: null}")
    shots = SHOTS.replace(
        "blender: feather", "blender: feather\n      stage_options: {blender: null}"
    )
    (reel / "shots.yaml").write_text(shots)
    assert render(reel, "--list").exit_code == 0


def test_shots_that_choose_different_executors_are_refused_not_run_on_the_first(reel: Path):
    shots = reel / "shots.yaml"
    shots.write_text(SHOTS.replace("blender: feather", "executor: ray"))
    for res in (render(reel), render(reel, "--list")):
        refused(res, f"{shots}:9", "shot 'b' runs on 'ray'", "shot 'a' on 'local'", "--executor")
    shots.write_text(SHOTS)
    toml = (reel / "lipdub.toml").read_text()
    (reel / "lipdub.toml").write_text(toml + "[stage_options.executor]\nnum_gpu = 1\n")
    refused(render(reel), "lipdub.toml", "executor 'local' has no option 'num_gpu'")
    assert not (reel / "renders" / "a_de.mov").exists()
