"""The mouth-landmark regressor behind L_lmk: point augmentation, training, checkpoints, G loss."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch.utils.data import default_collate

from lipdub.cli import main
from lipdub.data.clips import Clip, load_clips
from lipdub.errors import WeightsError
from lipdub.train.checkpoints import save_module
from lipdub.train.dataset import NO_AUGMENT, Augment, GeneratorWindows, _Augmenter, transform_points
from lipdub.train.generator_trainer import GeneratorTrainer, GenTrainSettings
from lipdub.train.landmarks import (
    KIND,
    LandmarkConfig,
    LandmarkFrames,
    MouthLandmarkNet,
    landmark_loss,
    load_landmark_net,
    point_error,
)
from tests.train.test_train import TINY, _adam_steps, prepared  # noqa: F401 (fixture)

S = 64


def _mouth(cx: float, cy: float, half_width: float, gap: float) -> np.ndarray:
    """20 dlib-ordered mouth points: corners at cx ± half_width, lips ``gap`` apart."""
    xs = cx + half_width * np.cos(np.linspace(np.pi, 0, 7))  # 48..54, left to right.
    upper = np.stack([xs, cy - gap / 2 - 2 * np.sin(np.linspace(0, np.pi, 7))], 1)
    xs_low = cx + half_width * np.cos(np.linspace(0, np.pi, 7))[1:6]  # 55..59, right to left.
    lower = np.stack([xs_low, cy + gap / 2 + 2 * np.sin(np.linspace(0, np.pi, 7))[1:6]], 1)
    inner_x = cx + 0.7 * half_width * np.cos(np.linspace(np.pi, 0, 5))  # 60..64.
    inner_up = np.stack([inner_x, np.full(5, cy - gap / 2)], 1)
    inner_low = np.stack([inner_x[3:0:-1], np.full(3, cy + gap / 2)], 1)  # 65..67.
    return np.concatenate([upper, lower, inner_up, inner_low]).astype(np.float32)


def _synthetic_clip(seed: int, frames: int = 24) -> tuple[Clip, np.ndarray]:
    """A grey face whose dark mouth moves and opens; its 20 points are the labels."""
    rng = np.random.default_rng(seed)
    crops = np.full((frames, S, S, 3), 150, np.uint8)
    points = np.zeros((frames, 20, 2), np.float32)
    for k in range(frames):
        cx, cy = rng.uniform(28, 36), rng.uniform(38, 44)
        hw, gap = rng.uniform(7, 10), rng.uniform(1, 8)
        points[k] = _mouth(cx, cy, hw, gap)
        y0, y1 = int(cy - gap / 2 - 2), int(cy + gap / 2 + 2)
        crops[k, y0 : y1 + 1, int(cx - hw) : int(cx + hw) + 1] = 30
    clip = Clip(
        clip_id=f"syn{seed}",
        speaker=f"spk{seed}",
        split="train",
        fps=Fraction(25),
        crops=crops,
        masks=np.zeros((frames, S, S), np.uint8),
        landmarks=np.zeros((frames, 68, 2), np.float32),
        frames=np.arange(frames),
        audio=np.zeros(16000, np.float32),
        mel=np.zeros((frames, 1, 80, 16), np.float16),
        offset=0,
    )
    return clip, points


def test_points_move_with_the_warp() -> None:
    """A bright pixel warped with the images lands where transform_points puts its point."""
    aug = _Augmenter(Augment(rotate_deg=5, scale=0.05, translate=0.03, flip=1.0), None)
    for seed in range(5):
        aug.rng = np.random.default_rng(seed)
        p = aug.draw(S)
        assert p["flip"]
        image = np.zeros((1, S, S), np.float32)
        x, y = 22, 40
        image[0, y - 1 : y + 2, x - 1 : x + 2] = 1.0
        warped = aug.geometry(image, p)[0]
        wy, wx = np.unravel_index(np.argmax(warped), warped.shape)
        moved = transform_points(np.full((20, 2), (x, y), np.float32), p, S)
        assert np.allclose(moved, moved[0])
        assert abs(moved[0, 0] - wx) <= 1.0 and abs(moved[0, 1] - wy) <= 1.0


def test_flip_keeps_the_left_corner_first() -> None:
    """After a mirror, point 48 is still the image-left corner (indices are swapped, not kept)."""
    pts = _mouth(26, 40, 8, 4)  # Off-centre: its mirror is elsewhere.
    p = {"identity": True, "flip": True, "matrix": None}
    flipped = transform_points(pts, p, S)
    assert flipped[0, 0] < flipped[6, 0]  # 48 left of 54.
    assert np.allclose(flipped[3, 0], S - 1 - pts[3, 0])  # 51, the top middle, maps to itself.
    assert np.allclose(transform_points(flipped, p, S), pts)  # Mirror twice = identity.


def test_regressor_learns_and_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    data = [_synthetic_clip(s) for s in range(3)]
    clips = [c for c, _ in data]
    labels = {c.clip_id: pts for c, pts in data}
    ds = LandmarkFrames(clips, labels, 10**6, NO_AUGMENT, seed=0)
    x, y = default_collate([ds[i] for i in range(32)])
    assert x.shape == (32, 3, S, S) and y.shape == (32, 20, 2)
    net = MouthLandmarkNet(LandmarkConfig(resolution=S, channels=(8, 16), hidden=32))
    losses = _adam_steps(net, lambda: point_error(net(x), y), 40)
    assert np.mean(losses[-5:]) < 0.5 * losses[0]
    path = tmp_path / "lm.safetensors"
    save_module(net, path, KIND, net.cfg.to_dict(), {"test": True})
    loaded = load_landmark_net(path)
    net.eval()
    with torch.no_grad():
        assert torch.allclose(loaded(x[:4]), net(x[:4]))
        # Another crop size: the points come back in that size's pixels.
        big = torch.nn.functional.interpolate(x[:4], scale_factor=2, mode="bilinear")
        assert torch.allclose(loaded(big), 2 * loaded(x[:4]), atol=1.5)
    assert not any(p.requires_grad for p in loaded.parameters())
    record = json.loads(path.with_suffix(".json").read_text())
    record["kind"] = "syncnet"
    path.with_suffix(".json").write_text(json.dumps(record))
    with pytest.raises(WeightsError, match="not 'mouth-landmarks'"):
        load_landmark_net(path)


def test_train_landmarks_cli_writes_a_loadable_checkpoint(prepared: Path, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "lm.safetensors"
    args = ["train", "landmarks", "--data", str(prepared), "--max-steps", "3", "--batch-size", "4"]
    bad = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "lm.pt")])
    assert bad.exit_code == 2 and "must end in .safetensors" in bad.output
    result = CliRunner().invoke(main, [*args, "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{") :])
    assert report["steps"] == 3
    assert np.isfinite(report["train_error_px"]) and np.isfinite(report["test_error_px"])
    net = load_landmark_net(out)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 20, 2)
    assert json.loads(out.with_suffix(".json").read_text())["provenance"]["steps"] == 3


def test_generator_landmark_loss_reaches_g(prepared: Path) -> None:  # noqa: F811
    """With a regressor, batches carry the window's points and L_lmk moves G's weights."""
    clips = load_clips(prepared, "train")
    rng = np.random.default_rng(0)
    points = {c.clip_id: rng.uniform(8, 24, (len(c), 20, 2)).astype(np.float32) for c in clips}
    ds = GeneratorWindows(clips, 2, Augment(), 0, mouth_points=points)
    batch = default_collate([ds[0], ds[1]])
    assert batch["points"].shape == (2, 5, 20, 2)
    torch.manual_seed(0)
    net = MouthLandmarkNet(LandmarkConfig(resolution=32, channels=(8, 16), hidden=16))
    torch.nn.init.normal_(net.out.weight, std=0.1)  # Not the constant start: input matters.
    fake = torch.zeros(10, 3, 32, 32, requires_grad=True)
    real, mask = torch.zeros(10, 3, 32, 32), torch.zeros(10, 1, 32, 32)
    mask[..., 12:28, 8:24] = 1
    loss, gap = landmark_loss(net.eval(), fake, real, mask, batch["points"].reshape(10, 20, 2))
    (loss + gap).backward()
    grad = fake.grad.abs().sum(dim=1)[0]
    assert grad[12:28, 8:24].sum() > 0 and grad[:12].sum() == 0  # Only through the mask.

    def g_after_one_step(lam: float, lam_gap: float = 0.0) -> torch.Tensor:
        torch.manual_seed(0)
        settings = GenTrainSettings(lambda_lmk=lam, lambda_gap=lam_gap)
        trainer = GeneratorTrainer(TINY, settings, torch.device("cpu"), landmark_net=net)
        values, _ = trainer.step(batch)
        assert np.isfinite(values["L_lmk"]) and values["L_lmk"] > 0
        assert np.isfinite(values["L_gap"]) and values["L_gap"] > 0
        return torch.cat([p.detach().flatten() for p in trainer.g.parameters()])

    base = g_after_one_step(0.0)
    assert not torch.equal(base, g_after_one_step(5.0))
    assert not torch.equal(base, g_after_one_step(0.0, 5.0))


def test_mouth_gap_matches_lip_gap_and_gap_loss_is_the_opening_error() -> None:
    """mouth_gap is lip_gap's definition on the 20 mouth points; L_gap is |Δgap| in pixels."""
    from lipdub.analysis.masks import lip_gap
    from lipdub.train.landmarks import mouth_gap

    rng = np.random.default_rng(3)
    face = rng.uniform(0, 128, (4, 68, 2))
    got = mouth_gap(torch.from_numpy(face[:, 48:68]))
    np.testing.assert_allclose(got.numpy(), lip_gap(face), rtol=1e-9)

    class Lookup(torch.nn.Module):  # A "regressor": these points for dark crops, those for light.
        def __init__(self, dark: torch.Tensor, light: torch.Tensor) -> None:
            super().__init__()
            self.dark, self.light = dark, light

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.where(x.mean(dim=(1, 2, 3))[:, None, None] > 0, self.light, self.dark)

    real_pts = torch.zeros(1, 20, 2)
    real_pts[0, [13, 14, 15], 1] = 10.0  # Inner upper lip (61-63) at y = 10 ...
    real_pts[0, [19, 18, 17], 1] = 16.0  # ... inner lower lip (67-65) at y = 16: a 6 px gap.
    fake_pts = real_pts.clone()
    fake_pts[0, [19, 18, 17], 1] = 12.0  # The same mouth opened only 2 px: 4 px too closed.
    dlib_pts = real_pts.clone()
    dlib_pts[0, [19, 18, 17], 1] = 15.0  # dlib reads the real gap as 5 px (R's bias: +1 px).
    real, fake = torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 8, 8)
    lmk, gap = landmark_loss(
        Lookup(real_pts, fake_pts), fake, real, torch.ones(1, 1, 8, 8), dlib_pts
    )
    assert float(gap) == pytest.approx(4.0)  # Against R's reading of the real crop, not dlib's.
    assert float(lmk) == pytest.approx(3 * 3.0 / 20)  # Against dlib: three points 3 px off.


def test_bundled_regressor_loads_by_name() -> None:
    net = load_landmark_net("mouth-landmarks-v1")
    assert net(torch.zeros(1, 3, 128, 128)).shape == (1, 20, 2)
    with pytest.raises(WeightsError, match="no mouth-landmarks checkpoint named 'syncnet-lite-v2'"):
        load_landmark_net("syncnet-lite-v2")


@pytest.mark.shared
def test_bundled_regressor_follows_dlib_on_an_unseen_speaker(tmp_path: Path) -> None:
    """On a test-split clip (a speaker it never saw): close to dlib, and it tracks the opening."""
    from lipdub.data.clips import load_clip
    from lipdub.data.prepare import prepare, read_clips_tsv
    from lipdub.train.landmarks import held_out_error, mouth_labels
    from tests.conftest import shared_data

    specs = [
        s
        for s in read_clips_tsv(shared_data() / "clips.tsv", "test")
        if s.video.name == "headGAN__assets_driving.mp4"
    ]
    (info,) = prepare(specs, tmp_path, size=128)
    clip = load_clip(tmp_path / info["clip_id"])
    labels = mouth_labels([clip])
    net = load_landmark_net("mouth-landmarks-v1")
    assert held_out_error(net, [clip], labels, torch.device("cpu")) < 1.5  # 0.95 px measured.
    with torch.no_grad():
        x = torch.from_numpy(clip.crops).float().div(127.5).sub(1).permute(0, 3, 1, 2)
        pred = net(x).numpy()
    gap = lambda p: p[:, 18, 1] - p[:, 14, 1]  # noqa: E731 (inner lips 66 − 62)
    assert np.corrcoef(gap(pred), gap(labels[clip.clip_id]))[0, 1] > 0.7
