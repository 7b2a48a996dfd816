"""Validation while training: held-out speakers, the best checkpoint kept, eval's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from lipdub.data.clips import load_clips
from lipdub.errors import ConfigError
from lipdub.model.checkpoint import load_checkpoint
from lipdub.train.backbone import train_generator
from lipdub.train.generator_trainer import GenTrainSettings
from lipdub.train.validate import Validator, split_speakers
from tests.train.test_prepare_shared import SHORT_CLIP, _shared
from tests.train.test_train import TINY, prepared  # noqa: F401 (fixture)


def test_split_speakers_holds_out_every_clip_of_a_speaker(prepared: Path) -> None:  # noqa: F811
    clips = load_clips(prepared, None)
    train, val = split_speakers(clips, ["spk_b"])
    assert [c.clip_id for c in train] == ["a", "c"] and [c.clip_id for c in val] == ["b"]
    with pytest.raises(ConfigError, match=r"no clip of \['nobody'\].*spk_a"):
        split_speakers(clips, ["spk_b", "nobody"])
    with pytest.raises(ConfigError, match="nothing is left to train on"):
        split_speakers(clips, ["spk_a", "spk_b", "spk_c"])


def _rows(path: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_validation_keeps_the_best_checkpoint_across_resume(
    prepared: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    settings = GenTrainSettings(batch_size=1, max_steps=3, val_speakers=("spk_b",), val_every=1)
    report = train_generator(prepared, tmp_path, TINY, settings, device="cpu")
    _, record = load_checkpoint(tmp_path / "generator.safetensors", expected_config=TINY)
    prov = record["provenance"]
    assert prov["clips"] == 1 and prov["val_speakers"] == ["spk_b"]  # spk_b never trains.
    rows = _rows(tmp_path / "val_log.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3] == [r["step"] for r in report["validation"]]
    for r in rows:
        assert r["margin"] == pytest.approx(min(r["LMD_zeroed"], r["LMD_copy"]) - r["LMD"])
        assert r["LMD_copy"] == rows[0]["LMD_copy"]  # The baseline does not depend on G.
    best = max(rows, key=lambda r: r["margin"])
    # (Compared by step and margin: gap_r is NaN on these synthetic crops, and NaN != NaN.)
    assert (report["best"]["step"], report["best"]["margin"]) == (best["step"], best["margin"])
    kept = json.loads((tmp_path / "best" / "validation.json").read_text())
    assert (kept["step"], kept["margin"]) == (best["step"], best["margin"])
    assert kept["speakers"] == ["spk_b"]
    _, best_record = load_checkpoint(
        tmp_path / "best" / "generator.safetensors", expected_config=TINY
    )
    assert best_record["provenance"]["steps"] == best["step"]

    more = GenTrainSettings(batch_size=1, max_steps=5, val_speakers=("spk_b",), val_every=1)
    report = train_generator(prepared, tmp_path, TINY, more, device="cpu", resume=True)
    rows = _rows(tmp_path / "val_log.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    best = max(rows, key=lambda r: r["margin"])  # Over both runs: the first run's best counts.
    assert report["best"]["step"] == best["step"]
    _, best_record = load_checkpoint(
        tmp_path / "best" / "generator.safetensors", expected_config=TINY
    )
    assert best_record["provenance"]["steps"] == best["step"]

    # Other validation speakers: the old best is not comparable; the first new result replaces it.
    other = GenTrainSettings(batch_size=1, max_steps=6, val_speakers=("spk_a",), val_every=1)
    report = train_generator(prepared, tmp_path, TINY, other, device="cpu", resume=True)
    assert report["best"]["step"] == 6 and report["best"]["speakers"] == ["spk_a"]


def test_validation_from_init_scores_the_starting_point(
    prepared: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    first = GenTrainSettings(batch_size=1, max_steps=1)
    train_generator(prepared, tmp_path / "a", TINY, first, device="cpu")
    settings = GenTrainSettings(batch_size=1, max_steps=2, val_speakers=("spk_b",), val_every=5)
    init = str(tmp_path / "a" / "generator.safetensors")
    train_generator(prepared, tmp_path / "b", TINY, settings, device="cpu", init=init)
    # Step 0 is the initial generator; the run's last step is validated even off the interval.
    assert [r["step"] for r in _rows(tmp_path / "b" / "val_log.jsonl")] == [0, 2]


@pytest.mark.shared
def test_validator_measures_what_eval_measures(tmp_path: Path) -> None:
    """On a real clip, validation's LMD rows are exactly ``lipdub eval``'s self-driven ones."""
    from lipdub.analysis.faces import DlibFaceDetector
    from lipdub.data.clips import load_clip
    from lipdub.data.prepare import prepare, read_clips_tsv
    from lipdub.eval import sync_scoring
    from lipdub.eval.evaluate import EvalContext, evaluate_clip
    from lipdub.model.checkpoint import resolve_generator
    from lipdub.model.mel import MelFrontend
    from lipdub.model.syncnet_file import resolve_syncnet

    data = _shared()
    specs = [s for s in read_clips_tsv(data / "clips.tsv", "train") if s.video.name in SHORT_CLIP]
    (info,) = prepare(specs, tmp_path, size=128)
    clip = load_clip(tmp_path / info["clip_id"])
    model, _ = resolve_generator(None)
    syncnet = resolve_syncnet(None)
    detector = DlibFaceDetector("hog")
    cpu = torch.device("cpu")
    ctx = EvalContext(
        model, sync_scoring.SyncNetScorer(syncnet, cpu), MelFrontend(syncnet.cfg.mel), detector, cpu
    )
    lmd = {}
    for scale in (1.0, 2.0):  # Both measure the model at the audio scale they are given.
        ctx.audio_scale = scale
        expected = evaluate_clip(ctx, clip, None, max_frames=100)["self"]
        got = Validator([clip], max_frames=100, detector=detector, audio_scale=scale)(model, cpu)
        assert got["LMD"] == pytest.approx(expected["model"]["LMD"])
        assert got["LMD_zeroed"] == pytest.approx(expected["model, audio zeroed"]["LMD"])
        assert got["LMD_copy"] == pytest.approx(expected["copy reference"]["LMD"])
        assert got["PSNR"] == pytest.approx(expected["model"]["PSNR"])
        assert got["gap_bias"] == pytest.approx(expected["model"]["gap-bias"])
        assert got["gap_r"] == pytest.approx(expected["model"]["gap-r"], nan_ok=True)
        assert np.isfinite(got["margin"]) and got["LMD"] > 0
        lmd[scale] = got
    assert lmd[2.0]["LMD"] != lmd[1.0]["LMD"]  # The scale reached the generator...
    assert lmd[2.0]["LMD_zeroed"] == pytest.approx(lmd[1.0]["LMD_zeroed"])  # ...but not silence.


def test_eval_keeps_only_the_named_speakers(prepared: Path, tmp_path: Path) -> None:  # noqa: F811
    from lipdub.eval.evaluate import evaluate
    from lipdub.model.syncnet_file import resolve_syncnet

    train_generator(prepared, tmp_path, TINY, GenTrainSettings(batch_size=1, max_steps=1), "cpu")
    weights = str(tmp_path / "generator.safetensors")
    syncnet = resolve_syncnet(None)
    result = evaluate(prepared, "train", weights, syncnet, max_frames=16, speakers=("spk_b",))
    assert [c["clip"] for c in result["clips"]] == ["b"] and result["speakers"] == ["spk_b"]
    assert result["audio_scale"] == 1.0  # A bare file has no manifest entry: the trained scale.
    with pytest.raises(ConfigError, match=r"--speakers: no clip of \['spk_x'\]"):
        evaluate(prepared, "train", weights, syncnet, speakers=("spk_x",))


def test_validation_records_are_strict_json() -> None:
    """gap-r is NaN on a still mouth: the logs write null there, which any JSON reader accepts."""
    from lipdub.train.backbone import _json_safe

    text = json.dumps(_json_safe({"step": 3, "gap_r": float("nan"), "LMD": 2.5, "x": "a"}))
    assert json.loads(text) == {"step": 3, "gap_r": None, "LMD": 2.5, "x": "a"}
    assert "NaN" not in text
