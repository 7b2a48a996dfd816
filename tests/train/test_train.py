"""Tiny training runs on synthetic prepared data: losses go down, checkpoints load, resume works."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from lipdub.analysis.masks import mouth_opening
from lipdub.data.clips import load_clips
from lipdub.data.prepare import ARRAYS, INFO, check_speakers, load_index, write_crops_video
from lipdub.errors import ConfigError
from lipdub.model.checkpoint import load_checkpoint
from lipdub.model.config import GeneratorConfig, MelConfig, SyncNetConfig
from lipdub.model.mel import MelFrontend
from lipdub.model.syncnet import SyncNet, sync_loss
from lipdub.model.syncnet_file import load_syncnet
from lipdub.train.backbone import train_generator
from lipdub.train.dataset import (
    MIN_REF_GAP,
    NEAR_REF_PROB,
    NEUTRAL_QUANTILE,
    NEUTRAL_REF_PROB,
    NO_AUGMENT,
    WINDOW,
    Augment,
    GeneratorWindows,
    SyncCandidates,
    SyncWindows,
    candidate_shifts,
)
from lipdub.train.generator_trainer import GeneratorTrainer, GenTrainSettings
from lipdub.train.syncnet import SyncTrainSettings, contrastive_sync_loss, train_syncnet
from tests.render.test_rest import lips_apart

SIZE = 32
FPS = 25
TINY = GeneratorConfig(
    name="tiny",
    resolution=SIZE,
    channel_base=256,
    channel_max=16,
    w_dim=32,
    audio_dim=16,
    face_dim=16,
    audio_channels=4,
    mapping_layers=2,
    delta_hidden=8,
    mals_hidden=8,
    mals_depth=1,
)
TINY_SYNC = SyncNetConfig(resolution=32, channels=(8, 16), audio_channels=(8, 16), embed_dim=16)


def make_prepared_clip(
    root: Path, name: str, speaker: str, split: str, frames: int = 40, seed: int = 0
) -> None:
    """A prepared clip whose dark 'mouth' opens with the loudness of a tone-burst audio."""
    rng = np.random.default_rng(seed)
    base = rng.integers(90, 170, (SIZE, SIZE, 3), dtype=np.uint8)
    n_audio = int(frames / FPS * 16000)
    t = np.arange(n_audio) / 16000
    env = (np.sin(2 * np.pi * 1.3 * t + seed) > 0).astype(np.float32)
    audio = (0.3 * env * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    crops = np.repeat(base[None], frames, axis=0).copy()
    e = SIZE // 8
    for k in range(frames):
        loud = env[min(int((k + 0.5) / FPS * 16000), n_audio - 1)]
        h = 1 + int(loud * 2 * e)
        crops[k, 5 * e : 5 * e + h, 3 * e : 5 * e] = 20
    masks = np.zeros((frames, SIZE, SIZE), np.uint8)
    masks[:, 4 * e : 7 * e, 2 * e : 6 * e] = 255
    d = root / name
    d.mkdir(parents=True)
    write_crops_video(d / f"crops_{SIZE}.mp4", crops, Fraction(FPS))
    np.savez_compressed(
        d / ARRAYS,
        frames=np.arange(frames, dtype=np.int32),
        landmarks=np.zeros((frames, 68, 2), np.float32),
        masks=masks,
        audio_16k=audio,
        # The datasets read these precomputed windows: they must carry the tone bursts.
        mel=MelFrontend(MelConfig())
        .windows(audio, Fraction(FPS), np.arange(frames), 16000)
        .numpy()
        .astype(np.float16),
        descriptor=np.zeros(128, np.float32),
    )
    info = {
        "clip_id": name,
        "speaker": speaker,
        "split": split,
        "size": SIZE,
        "fps": [FPS, 1],
        "frames": frames,
        "offset_frames": None,
        "offset_confidence": None,
    }
    (d / INFO).write_text(json.dumps(info))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("prepared")
    make_prepared_clip(root, "a", "spk_a", "train", seed=0)
    make_prepared_clip(root, "b", "spk_b", "train", seed=1)
    make_prepared_clip(root, "c", "spk_c", "test", seed=2)
    return root


def test_index_and_speakers(prepared: Path) -> None:
    infos = load_index(prepared)
    assert [i["clip_id"] for i in infos] == ["a", "b", "c"]
    assert check_speakers(infos) == []
    assert check_speakers([*infos, {"speaker": "spk_a", "split": "test"}]) == ["spk_a"]


def test_datasets_shapes_and_augmentation(prepared: Path) -> None:
    clips = load_clips(prepared, "train")
    assert len(clips) == 2 and clips[0].crops.shape == (40, SIZE, SIZE, 3)
    faces, mel, label = SyncWindows(clips, 8, Augment(), 0)[3]
    assert faces.shape == (WINDOW, 3, SIZE, SIZE) and mel.shape == (1, 80, 16)
    assert label.item() in (0.0, 1.0)
    labels = [SyncWindows(clips, 40, NO_AUGMENT, 0)[i][2].item() for i in range(40)]
    assert 0 < sum(labels) < 40  # Both in-sync and shifted pairs.
    s = GeneratorWindows(clips, 4, Augment(), 0)[1]
    assert s["target"].shape == (WINDOW, 3, SIZE, SIZE)
    assert s["mask"].shape == (WINDOW, 1, SIZE, SIZE) and s["reference"].shape == (3, SIZE, SIZE)
    assert s["mel"].shape == (WINDOW, 1, 80, 16) and s["sync_mel"].shape == (1, 80, 16)
    assert float(s["target"].min()) >= -1 and float(s["target"].max()) <= 1
    plain = GeneratorWindows(clips, 4, NO_AUGMENT, 0)[1]
    assert torch.equal(plain["mask"], plain["mask"].round())  # No warp: the box mask is exact.


def _adam_steps(
    net: torch.nn.Module, loss_fn: Callable[[], torch.Tensor], steps: int
) -> list[float]:
    """``steps`` Adam steps (lr 1e-3) on ``loss_fn()``; the loss before each step."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_syncnet_loss_decreases_and_checkpoint_loads(prepared: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    clips = load_clips(prepared, "train")
    net = SyncNet(TINY_SYNC)
    faces, mel, label = default_collate(
        [SyncWindows(clips, 16, NO_AUGMENT, 0)[i] for i in range(16)]
    )
    losses = _adam_steps(net, lambda: sync_loss(net(net.mouths(faces), mel), label), 12)
    assert np.mean(losses[-3:]) < losses[0]
    report = train_syncnet(
        prepared,
        tmp_path,
        SyncTrainSettings(batch_size=4, max_steps=3),
        device="cpu",
        cfg=TINY_SYNC,
    )
    assert report["steps"] == 3 and 0.0 <= report["held_out_accuracy"] <= 1.0
    assert 0.0 <= report["offset_detection_rate"] <= 1.0
    loaded = load_syncnet(tmp_path / "syncnet.safetensors")
    assert loaded.cfg == TINY_SYNC


def test_sync_candidates_mask_shifts_outside_the_clip(prepared: Path) -> None:
    clips = load_clips(prepared, "train")
    ds = SyncCandidates(clips, 64, NO_AUGMENT, 0)
    shifts = candidate_shifts()
    assert shifts[0] == 0 and not (np.abs(shifts[1:]) < 3).any()
    for i in range(64):
        faces, mels, valid = ds[i]
        assert faces.shape == (WINDOW, 3, SIZE, SIZE) and mels.shape == (len(shifts), 1, 80, 16)
        assert bool(valid[0])
        rng = np.random.default_rng([0, i])  # The dataset's own draw: clip, then window.
        clip = ds.clips[rng.choice(len(ds.clips), p=ds.weights)]
        centre = int(rng.integers(0, len(clip) - WINDOW + 1)) + WINDOW // 2
        want = (centre + shifts >= 0) & (centre + shifts < len(clip))
        assert np.array_equal(valid.numpy(), want)
        # A valid shifted window is the clip's own precomputed window at that frame.
        k = int(np.argmax(want & (shifts != 0)))
        ref = torch.from_numpy(clip.mel[centre + shifts[k]].astype(np.float32))
        assert torch.equal(mels[k], ref)


def test_contrastive_syncnet_loss_decreases(prepared: Path) -> None:
    torch.manual_seed(0)
    clips = load_clips(prepared, "train")
    net = SyncNet(TINY_SYNC)
    faces, mels, valid = default_collate(
        [SyncCandidates(clips, 8, NO_AUGMENT, 0)[i] for i in range(8)]
    )
    far = torch.from_numpy(np.abs(candidate_shifts()) >= 5)
    losses = _adam_steps(net, lambda: contrastive_sync_loss(net, faces, mels, valid, far), 15)
    assert np.mean(losses[-3:]) < 0.8 * losses[0]


def test_generator_loss_decreases(prepared: Path) -> None:
    clips = load_clips(prepared, "train")
    ds = GeneratorWindows(clips, 2, NO_AUGMENT, 0)
    batch = default_collate([ds[0], ds[1]])
    trainer = GeneratorTrainer(
        TINY, GenTrainSettings(lr_g=2e-3), torch.device("cpu"), syncnet=SyncNet(TINY_SYNC)
    )
    l1 = [trainer.step(batch)[0]["L1"] for _ in range(10)]
    assert np.mean(l1[-3:]) < l1[0]


def test_lambda_sync_weighs_l_sync_in_l_g(prepared: Path) -> None:
    clips = load_clips(prepared, "train")
    batch = default_collate([GeneratorWindows(clips, 2, NO_AUGMENT, 0)[i] for i in (0, 1)])

    def first_step(lam: float) -> dict[str, float]:
        torch.manual_seed(0)  # Same G, D and SyncNet: only the weight differs.
        settings = GenTrainSettings(lambda_sync=lam)
        sync = SyncNet(TINY_SYNC)
        return GeneratorTrainer(TINY, settings, torch.device("cpu"), syncnet=sync).step(batch)[0]

    full, part, off = first_step(1.0), first_step(0.25), first_step(0.0)
    assert full["L_sync"] == part["L_sync"] == off["L_sync"] > 0
    assert full["L_g"] - off["L_g"] == pytest.approx(full["L_sync"], rel=1e-4)
    assert part["L_g"] - off["L_g"] == pytest.approx(0.25 * full["L_sync"], rel=1e-4)
    with pytest.raises(ConfigError, match="must not be negative"):
        train_generator(prepared, Path("unused"), TINY, GenTrainSettings(lambda_sync=-1), "cpu")


def test_generator_run_checkpoint_resume(prepared: Path, tmp_path: Path) -> None:
    settings = GenTrainSettings(batch_size=1, max_steps=2, sample_every=1)
    report = train_generator(prepared, tmp_path, TINY, settings, device="cpu")
    assert report["steps"] == 2
    model, record = load_checkpoint(tmp_path / "generator.safetensors", expected_config=TINY)
    assert record["provenance"]["steps"] == 2
    assert (tmp_path / "samples" / "step_000001.png").is_file()
    grid = __import__("cv2").imread(str(tmp_path / "samples" / "step_000002.png"))
    assert grid.shape == (SIZE, 4 * SIZE, 3)  # masked input | reference | output | target.
    more = GenTrainSettings(batch_size=1, max_steps=3, sample_every=1)
    report = train_generator(prepared, tmp_path, TINY, more, device="cpu", resume=True)
    assert report["steps"] == 3 and report["run_steps"] == 1
    out = model(
        torch.zeros(1, 5, 3, SIZE, SIZE),
        torch.zeros(1, 3, SIZE, SIZE),
        torch.zeros(1, 5, 1, SIZE, SIZE),
        torch.zeros(1, 5, 1, 80, 16),
    )
    assert torch.isfinite(out).all()


def test_vgg19_perceptual_from_user_file(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from lipdub.errors import WeightsError
    from lipdub.train.losses import VGG_CFG, VGG19Perceptual

    torch.manual_seed(0)
    state, c, i = {}, 3, 0
    for v in VGG_CFG:  # torchvision's vgg19().features key names, random values.
        if v == "M":
            i += 1
            continue
        state[f"features.{i}.weight"] = torch.randn(v, c, 3, 3) * 0.05
        state[f"features.{i}.bias"] = torch.zeros(v)
        c, i = v, i + 2
    path = tmp_path / "vgg19.safetensors"
    save_file(state, str(path))
    vgg = VGG19Perceptual(path)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    assert float(vgg(x, x)) == 0.0
    assert float(vgg(x, -x)) > 0.0
    save_file({"features.0.weight": state["features.0.weight"]}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(WeightsError):
        VGG19Perceptual(tmp_path / "bad.safetensors")


def test_generator_references_are_near_closed_or_far(prepared: Path) -> None:
    """Every reference is outside the window: a frame 1-2 beside it, or at least MIN_REF_GAP
    away; about NEUTRAL_REF_PROB of them come from the clip's most closed mouths."""
    clip = load_clips(prepared, "train")[0]
    speech = np.abs(np.sin(np.arange(len(clip)) * 0.7)) * 0.3  # Lips apart by 0 .. 0.3 IOD.
    clip = dataclasses.replace(clip, landmarks=lips_apart(speech.tolist()))
    gaps = np.array([mouth_opening(lm) for lm in clip.landmarks])
    ds = GeneratorWindows([clip], 1, NO_AUGMENT, 0)
    closed = set(ds._closed[clip.clip_id].tolist())
    assert 0 < len(closed) < len(clip) / 4
    assert all(gaps[i] <= np.quantile(gaps, NEUTRAL_QUANTILE) for i in closed)
    near = neutral = 0
    draws = 400
    for k in range(draws):
        rng = np.random.default_rng(k)
        t0 = int(rng.integers(MIN_REF_GAP + 2, len(clip) - WINDOW - MIN_REF_GAP - 2))
        ref = ds._reference(clip, t0, rng)
        assert not t0 <= ref < t0 + WINDOW
        if ref in (t0 - 2, t0 - 1, t0 + WINDOW, t0 + WINDOW + 1):
            near += 1
        else:
            assert ref < t0 - MIN_REF_GAP or ref >= t0 + WINDOW + MIN_REF_GAP
            neutral += ref in closed
    assert abs(near / draws - NEAR_REF_PROB) < 0.08
    assert neutral / draws > NEUTRAL_REF_PROB - 0.08  # Random far draws add a few more.


def test_generator_without_near_references(prepared: Path) -> None:
    """--near-reference 0: every reference is at least MIN_REF_GAP from the window."""
    clip = load_clips(prepared, "train")[0]
    ds = GeneratorWindows([clip], 1, NO_AUGMENT, 0, near_ref_prob=0.0)
    for k in range(200):
        rng = np.random.default_rng(k)
        t0 = int(rng.integers(0, len(clip) - WINDOW + 1))
        ref = ds._reference(clip, t0, rng)
        assert ref < t0 - MIN_REF_GAP or ref >= t0 + WINDOW + MIN_REF_GAP, (t0, ref)
    with pytest.raises(ConfigError, match=r"near-reference share 0\.9"):
        GeneratorWindows([clip], 1, NO_AUGMENT, 0, near_ref_prob=0.9)


def test_generator_weight_average_is_released_and_resumed(prepared: Path, tmp_path: Path) -> None:
    """With --ema-half-life the released generator is the moving average, kept across resumes."""
    clips = load_clips(prepared, "train")
    batch = default_collate([GeneratorWindows(clips, 2, NO_AUGMENT, 0)[i] for i in range(2)])
    settings = GenTrainSettings(batch_size=1, max_steps=2, ema_half_life=1.0)  # β = ½.
    trainer = GeneratorTrainer(TINY, settings, torch.device("cpu"))
    before = copy.deepcopy(trainer.g.state_dict())
    trainer.step(batch)
    for k, v in trainer.g_ema.state_dict().items():
        if v.is_floating_point() and "delta_w" not in k:
            assert torch.allclose(v, (before[k] + trainer.g.state_dict()[k]) / 2, atol=1e-6), k
    report = train_generator(prepared, tmp_path, TINY, settings, device="cpu")
    assert report["steps"] == 2
    released, record = load_checkpoint(tmp_path / "generator.safetensors", expected_config=TINY)
    assert record["provenance"]["ema_half_life_steps"] == 1.0
    resumed = GeneratorTrainer(TINY, settings, torch.device("cpu"))
    resumed.resume(tmp_path)
    for k, v in released.state_dict().items():  # fp16 release = the fp32 average, rounded.
        assert torch.allclose(v.float(), resumed.g_ema.state_dict()[k].half().float()), k
    assert not all(
        torch.equal(a, b)
        for a, b in zip(resumed.g.parameters(), resumed.g_ema.parameters(), strict=True)
    )


def test_gated_generator_starts_from_an_ungated_checkpoint(prepared: Path, tmp_path: Path) -> None:
    """``--init`` of a gate-less generator into ``--reference-gate`` training (the gates start
    at zero, the rest is copied); the reverse is refused with a message naming the flag."""
    one = GenTrainSettings(batch_size=1, max_steps=1)
    train_generator(prepared, tmp_path / "plain", TINY, one, device="cpu")
    gated_cfg = dataclasses.replace(TINY, reference_gate=True)
    start = str(tmp_path / "plain" / "generator.safetensors")
    init_only = GenTrainSettings(batch_size=1, max_steps=0)
    train_generator(prepared, tmp_path / "gated", gated_cfg, init_only, "cpu", init=start)
    plain, _ = load_checkpoint(tmp_path / "plain" / "generator.safetensors")
    gated, record = load_checkpoint(tmp_path / "gated" / "generator.safetensors")
    assert record["config"]["reference_gate"] is True
    own = plain.state_dict()
    for k, v in gated.state_dict().items():
        if ".ref_gates." in k:
            assert not v.any()
        else:
            assert torch.equal(v, own[k]), k
    gated_start = str(tmp_path / "gated" / "generator.safetensors")
    with pytest.raises(ConfigError, match="--reference-gate"):
        train_generator(prepared, tmp_path / "x", TINY, init_only, "cpu", init=gated_start)


def test_train_generator_cli_defaults_are_the_settings_defaults() -> None:
    """The CLI repeats GenTrainSettings' defaults (it must not import torch to show --help);
    this keeps the two from drifting apart."""
    from lipdub.cli.train import train_generator_cmd

    defaults = GenTrainSettings()
    args = ["--data", "d", "--out", "o"]
    params = train_generator_cmd.make_context("generator", args).params  # Parsed, not run.
    checked = 0
    for name, value in params.items():
        if name in {f.name for f in dataclasses.fields(GenTrainSettings)}:
            want = getattr(defaults, name)
            if name == "val_speakers":
                want = ",".join(want)
            assert value == want, name
            checked += 1
    assert checked >= 10


def test_reference_gates_train_at_their_own_rate_in_module_order(prepared: Path) -> None:
    gated_cfg = dataclasses.replace(TINY, reference_gate=True)
    settings = GenTrainSettings(gate_lr_mult=10.0)
    trainer = GeneratorTrainer(gated_cfg, settings, torch.device("cpu"))
    names = {id(p): n for n, p in trainer.g.named_parameters()}
    order = [p for group in trainer.opt_g.param_groups for p in group["params"]]
    assert order == [p for p in trainer.g.parameters() if p.requires_grad]  # Resumable.
    for group in trainer.opt_g.param_groups:
        gates = {".ref_gates." in names[id(p)] for p in group["params"]}
        assert len(gates) == 1
        assert group["lr"] == pytest.approx(settings.lr_g * (10.0 if gates.pop() else 1.0))
    assert any(group["lr"] > settings.lr_g for group in trainer.opt_g.param_groups)
    bad = GenTrainSettings(gate_lr_mult=0.0)
    with pytest.raises(ConfigError, match="--gate-lr-mult"):
        train_generator(prepared, Path("unused"), gated_cfg, bad, "cpu")
