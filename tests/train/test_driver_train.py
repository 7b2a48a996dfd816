"""Training the audio driver: basis, targets, AV offset, a tiny run that learns, the CLI."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from lipdub.analysis.mouth_shape import mouth_shape
from lipdub.cli import main
from lipdub.data.clips import Clip
from lipdub.data.prepare import ARRAYS, INFO, write_crops_video
from lipdub.errors import ConfigError
from lipdub.model.config import MelConfig
from lipdub.model.driver import BandStats, DriverConfig, load_driver
from lipdub.model.mel import MelFrontend
from lipdub.train.driver import DriverTrainSettings, train_driver_on
from lipdub.train.driver_data import clip_mels, clip_windows, fit_basis, shapes_gap, z_scores

FPS = 25
RATE = 16000
IOD = 40.0  # Eye centres 40 px apart in the synthetic faces.
TINY = DriverConfig(components=4, channels=(16, 16), embed=16, hidden=16, kernel=3, layers=2)


def _landmarks(gap: np.ndarray, width: np.ndarray) -> np.ndarray:
    """(T, 68, 2): level eyes IOD apart and a mouth whose inner lips are ``gap`` IODs apart."""
    t = len(gap)
    lm = np.zeros((t, 68, 2), np.float32)
    lm[:, 36:42] = (40.0, 50.0)
    lm[:, 42:48] = (40.0 + IOD, 50.0)
    cx, cy = 60.0, 90.0
    for k in range(t):
        hw, g = width[k] * IOD, gap[k] * IOD
        xs = cx + hw * np.cos(np.linspace(np.pi, 0, 7))
        upper = np.stack([xs, cy - g / 2 - 4 * np.sin(np.linspace(0, np.pi, 7))], 1)
        low_x = cx + hw * np.cos(np.linspace(0, np.pi, 7))[1:6]
        lower = np.stack([low_x, cy + g / 2 + 4 * np.sin(np.linspace(0, np.pi, 7))[1:6]], 1)
        ix = cx + 0.7 * hw * np.cos(np.linspace(np.pi, 0, 5))
        inner_up = np.stack([ix, np.full(5, cy - g / 2)], 1)
        inner_low = np.stack([ix[3:0:-1], np.full(3, cy + g / 2)], 1)
        lm[k, 48:68] = np.concatenate([upper, lower, inner_up, inner_low])
    return lm


def _talking(seed: int, frames: int = 160, offset: int = 0) -> Clip:
    """A clip whose mouth opens with the loudness of its audio (syllable-like noise bursts).

    ``offset``: the audio is late by this many frames (the clip's AV offset, to be applied).
    """
    rng = np.random.default_rng(seed)
    loud = np.zeros(frames + abs(offset) + 1)
    k = 0
    while k < len(loud):  # On/off stretches of 2–7 frames.
        n = int(rng.integers(2, 8))
        loud[k : k + n] = rng.uniform(0.3, 1.0) if rng.random() < 0.6 else 0.0
        k += n
    per = RATE // FPS
    env = np.repeat(loud, per)
    audio_env = np.concatenate([np.zeros(offset * per), env])[: len(env)] if offset else env
    timbre = 0.5 + seed % 3  # Another voice per speaker: noise bands of other gains.
    noise = rng.normal(size=len(env)) * timbre * 0.05
    audio = (audio_env * noise).astype(np.float32)
    gap = 0.02 + 0.25 * loud[:frames] * (0.6 + 0.2 * (seed % 3))  # Each speaker's own range.
    width = 0.45 + 0.03 * rng.normal(size=frames)
    mel = MelFrontend(MelConfig()).windows(audio, Fraction(FPS), np.arange(frames), RATE)
    return Clip(
        clip_id=f"talk{seed}",
        speaker=f"spk{seed}",
        split="train",
        fps=Fraction(FPS),
        crops=np.zeros((frames, 8, 8, 3), np.uint8),
        masks=np.zeros((frames, 8, 8), np.uint8),
        landmarks=_landmarks(gap, width),
        frames=np.arange(frames),
        audio=audio,
        mel=mel.numpy().astype(np.float16),
        offset=offset,
    )


def test_basis_is_orthonormal_and_opens_the_mouth() -> None:
    clips = [_talking(s) for s in range(3)]
    shapes = [mouth_shape(c.landmarks) for c in clips]
    mean, basis, explained = fit_basis(shapes, 4)
    assert mean.shape == (40,) and basis.shape == (4, 40)
    np.testing.assert_allclose(basis @ basis.T, np.eye(4), atol=1e-9)
    assert explained[0] > 0.6 and np.all(np.diff(explained) <= 0)  # The gap dominates here.
    all_shapes = np.concatenate(shapes)
    coef0 = (all_shapes.reshape(len(all_shapes), 40) - mean) @ basis[0]
    assert np.corrcoef(coef0, shapes_gap(all_shapes))[0, 1] > 0.95  # Signed: + is open.
    with pytest.raises(ConfigError, match="cannot fit"):
        fit_basis([shapes[0][:3]], 4)


def test_z_scores_are_per_clip_with_a_floor() -> None:
    rng = np.random.default_rng(0)
    coef = rng.normal([1.0, 5.0], [2.0, 0.001], size=(500, 2))
    z = z_scores(coef, floor=np.array([0.1, 0.1]))
    assert abs(z[:, 0].mean()) < 1e-6 and z[:, 0].std() == pytest.approx(1.0, rel=1e-5)
    assert z[:, 1].std() < 0.02  # Jitter of a still component is not blown up to ±1σ.


def test_clip_mels_apply_the_av_offset_and_the_track_normalisation() -> None:
    clip = _talking(0, frames=60, offset=2)
    front = MelFrontend(MelConfig())
    audio_frames = np.arange(-3, 63) + 2  # Track frames −3 … 62, audio 2 frames later.
    raw = clip_windows(clip, audio_frames, front)
    assert raw.shape == (66, 1, 80, 16) and raw.dtype == np.float16
    want = front.windows(clip.audio, clip.fps, audio_frames).numpy()
    np.testing.assert_allclose(raw.astype(np.float32), want, atol=0.01)
    np.testing.assert_array_equal(raw[3:61], clip.mel[2:60])  # Reused from `data prepare`.
    mel = clip_mels(clip, 3, front)
    stats = BandStats.of([torch.from_numpy(want[3:63])])  # Over the track's own frames.
    np.testing.assert_allclose(mel, stats.apply(torch.from_numpy(want)).numpy(), atol=0.05)


def test_tiny_run_learns_that_loudness_opens_the_mouth(tmp_path: Path) -> None:
    """Mouth opening is a known function of loudness: held-out speakers' correlation is high."""
    train = [_talking(s) for s in range(4)]
    val = [_talking(10)]
    test = [_talking(11, offset=2)]  # Late audio: only right if the offset is applied.
    settings = DriverTrainSettings(batch_size=8, max_steps=150, val_every=50)
    out = tmp_path / "drv.safetensors"
    log = tmp_path / "drv.log.jsonl"
    report = train_driver_on(train, val, test, out, TINY, settings, "cpu", log)
    assert report["steps"] == 150
    assert report["last_loss"] < report["first_loss"]  # Components 2–4 are noise: not to 0.
    for split in ("val", "test"):
        assert report[split]["r_opening"] > 0.6, report[split]
        assert report[split]["r_gap"] > 0.6, report[split]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["step"] for line in lines] == [50, 100, 150]
    assert all("r_gap" in line["val"] for line in lines)
    driver = load_driver(str(out))
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["provenance"]["val_speakers"] == ["spk10"]
    assert record["provenance"]["kept_step"] in (50, 100, 150)
    # The saved driver reproduces the report's test correlation through predict().
    clip = test[0]
    z = driver.predict(clip.audio, clip.fps, clip.frames + clip.offset)
    gap = shapes_gap(mouth_shape(clip.landmarks))
    r = np.corrcoef(z[:, 0], gap)[0, 1]
    assert r == pytest.approx(report["test"]["r_z"][0], abs=0.02)
    # Without the clip's AV offset the audio is 2 frames late and the fit much worse.
    late = driver.predict(clip.audio, clip.fps, clip.frames)
    assert np.corrcoef(late[:, 0], gap)[0, 1] < r - 0.2


def _write_prepared(root: Path, clip: Clip, split: str) -> None:
    d = root / clip.clip_id
    d.mkdir(parents=True)
    write_crops_video(d / "crops_8.mp4", np.full((len(clip), 8, 8, 3), 128, np.uint8), clip.fps)
    np.savez_compressed(
        d / ARRAYS,
        frames=clip.frames.astype(np.int32),
        landmarks=clip.landmarks,
        masks=clip.masks,
        audio_16k=clip.audio,
        mel=clip.mel,
        descriptor=np.zeros(128, np.float32),
    )
    info = {
        "clip_id": clip.clip_id,
        "speaker": clip.speaker,
        "split": split,
        "size": 8,
        "fps": [FPS, 1],
        "frames": len(clip),
        "offset_frames": None,
        "offset_confidence": None,
    }
    (d / INFO).write_text(json.dumps(info))


def test_train_driver_cli(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for s in range(3):
        _write_prepared(data, _talking(s, frames=60), "train")
    _write_prepared(data, _talking(7, frames=60), "test")
    out = tmp_path / "drv.safetensors"
    args = ["train", "driver", "--data", str(data), "--max-steps", "4", "--batch-size", "2"]
    args += ["--val-every", "2", "--components", "6", "--device", "cpu"]
    bad = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "drv.pt")])
    assert bad.exit_code == 2 and "must end in .safetensors" in bad.output
    typo = CliRunner().invoke(main, [*args, "--out", str(out), "--val-speakers", "spk9"])
    assert typo.exit_code != 0 and "spk9" in typo.output
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--val-speakers", "spk2"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["steps"] == 4 and report["test"]["clips"] == 1 and report["val"]["clips"] == 1
    assert load_driver(str(out)).components == 6
    assert len(out.with_suffix(".log.jsonl").read_text().splitlines()) == 2
