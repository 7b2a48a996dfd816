"""The exemplar path's audio driver: basis projections, actor mapping, inference, checkpoints."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from lipdub.errors import WeightsError
from lipdub.model import driver as driver_mod
from lipdub.model.checkpoint import load_manifest, sha256_file
from lipdub.model.driver import (
    KIND,
    SHAPE_DIM,
    BandStats,
    Driver,
    DriverConfig,
    MouthDriverNet,
    load_driver,
    map_to_actor,
    stats_frames,
)
from lipdub.train.checkpoints import save_module

TINY = DriverConfig(components=5, channels=(8, 8), embed=8, hidden=8, kernel=3, layers=2)
FPS = Fraction(25)
BUNDLED = "mouth-driver-v1"  # The learned driver in weights/ (research-only).


def _driver(cfg: DriverConfig = TINY, seed: int = 0) -> Driver:
    """A random (untrained) driver with a random orthonormal basis."""
    torch.manual_seed(seed)
    net = MouthDriverNet(cfg)
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(SHAPE_DIM, SHAPE_DIM)))
    net.set_basis(rng.normal(size=SHAPE_DIM) * 0.1, q[: cfg.components])
    for m in net.modules():  # Non-trivial BatchNorm statistics.
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return Driver(net, "test")


def _speech(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Noise bursts: loud and quiet stretches, like syllables."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    env = np.repeat(rng.uniform(0, 1, n // 1600 + 1) > 0.5, 1600)[:n]
    return (0.2 * env * rng.normal(size=n)).astype(np.float32)


def test_project_unproject_round_trip() -> None:
    d = _driver()
    rng = np.random.default_rng(1)
    coef = rng.normal(size=(7, d.components)).astype(np.float32)
    shapes = d.unproject(coef)
    assert shapes.shape == (7, 20, 2) and shapes.dtype == np.float32
    np.testing.assert_allclose(d.project(shapes), coef, atol=1e-5)
    # A full basis (K = 40) reproduces any shape exactly.
    full = _driver(DriverConfig(components=SHAPE_DIM, channels=(4,), embed=4, hidden=4))
    shapes = rng.normal(size=(3, 20, 2)).astype(np.float32)
    np.testing.assert_allclose(full.unproject(full.project(shapes)), shapes, atol=1e-5)
    with pytest.raises(ValueError, match=r"shapes: expected \(N, 20, 2\)"):
        d.project(np.zeros((3, 68, 2)))
    with pytest.raises(ValueError, match="coef: expected"):
        d.unproject(np.zeros((3, d.components + 1)))


def test_map_to_actor_gives_the_actors_mean_and_spread() -> None:
    rng = np.random.default_rng(2)
    actor = rng.normal([1.0, -2.0, 0.5], [0.1, 2.0, 0.01], size=(5000, 3))
    z = rng.normal(size=(5000, 3))
    out = map_to_actor(z, actor, clip=False)
    assert np.all(np.abs(out.mean(0) - actor.mean(0)) < 0.05 * actor.std(0))
    np.testing.assert_allclose(out.std(0), actor.std(0), rtol=0.05)
    # z = the actor's own z-scores gives back the actor's coefficients.
    own = (actor - actor.mean(0)) / actor.std(0)
    np.testing.assert_allclose(map_to_actor(own, actor, clip=False), actor, atol=1e-5)
    # A yawn (z = 10) is held to the actor's 99th percentile; a closed mouth to the 1st.
    clipped = map_to_actor(np.array([[10.0, -10.0, 0.0]]), actor)
    lo, hi = np.quantile(actor, [0.01, 0.99], axis=0)
    assert clipped[0, 0] == pytest.approx(hi[0], rel=1e-5)
    assert clipped[0, 1] == pytest.approx(lo[1], rel=1e-5)
    # A component the actor never moves stays at its value.
    still = np.column_stack([actor[:, 0], np.full(len(actor), 0.3)])
    assert np.allclose(map_to_actor(np.full((4, 2), 2.0), still)[:, 1], 0.3)
    with pytest.raises(ValueError):
        map_to_actor(np.zeros((4, 3)), actor[:, :2])


def test_network_checks_its_input() -> None:
    net = MouthDriverNet(TINY).eval()
    r = TINY.context
    out = net(torch.zeros(2, 10 + 2 * r, 1, 80, 16))
    assert out.shape == (2, 10, TINY.components)
    with pytest.raises(ValueError, match="driver mel: expected shape"):
        net(torch.zeros(2, 10, 80, 16))
    with pytest.raises(ValueError, match="need more than"):
        net(torch.zeros(1, 2 * r, 1, 80, 16))


def test_predict_shape_determinism_and_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    d = _driver()
    audio = _speech()
    frames = np.arange(100)
    z = d.predict(audio, FPS, frames)
    assert z.shape == (100, d.components) and z.dtype == np.float32
    np.testing.assert_array_equal(z, d.predict(audio, FPS, frames))  # Deterministic.
    # The network on the frames' windows, each mel band standardised over the track, with r
    # frames of context each side: the same numbers.
    r = d.cfg.context
    stats = BandStats.of([d.mel.windows(audio, FPS, frames)])
    mel = stats.apply(d.mel.windows(audio, FPS, np.arange(-r, 100 + r)))
    with torch.no_grad():
        np.testing.assert_allclose(z, d.net(mel[None])[0].numpy(), atol=1e-5)
    # Small chunks, shuffled and repeated frames do not change a frame's prediction.
    monkeypatch.setattr(driver_mod, "CHUNK_FRAMES", 7)
    np.testing.assert_allclose(d.predict(audio, FPS, frames), z, atol=1e-5)
    perm = np.random.default_rng(0).permutation(100)
    twice = np.concatenate([perm, perm[:10]])
    np.testing.assert_allclose(d.predict(audio, FPS, twice), z[twice], atol=1e-5)
    # A track with a gap: each run gets its own context, the statistics are the track's.
    gappy = np.concatenate([np.arange(0, 40), np.arange(60, 100)])
    stats = BandStats.of([d.mel.windows(audio, FPS, gappy)])
    mel = stats.apply(d.mel.windows(audio, FPS, np.arange(60 - r, 100 + r)))
    with torch.no_grad():
        want = d.net(mel[None])[0].numpy()
    np.testing.assert_allclose(d.predict(audio, FPS, gappy)[40:], want, atol=1e-5)
    assert d.predict(audio, FPS, np.array([], np.int64)).shape == (0, d.components)
    # Frames past the end of the dub read silence: finite, and all alike.
    tail = d.predict(audio, FPS, np.arange(400, 420))
    assert np.isfinite(tail).all() and np.allclose(tail, tail[0], atol=1e-5)


def test_band_stats_standardise_each_band_over_the_track() -> None:
    rng = np.random.default_rng(4)
    windows = torch.from_numpy(rng.normal(2.0, 3.0, (60, 1, 80, 16)).astype(np.float32))
    windows[..., 5, :] = -4.0  # A band that never changes: std floored, not divided by 0.
    stats = BandStats.of([windows[:25], windows[25:]])  # Chunks give the whole's statistics.
    x = stats.apply(windows)
    moving = np.delete(np.arange(80), 5)
    np.testing.assert_allclose(x[..., moving, :].mean((0, 1, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(x[..., moving, :].std((0, 1, 3)), 1.0, atol=1e-3)
    assert torch.all(x[..., 5, :] == 0)
    # A short track takes its statistics from MIN_STATS_FRAMES frames around it.
    assert np.array_equal(stats_frames(np.arange(100)[::-1]), np.arange(100))
    short = stats_frames(np.array([30, 31, 32]))
    assert len(short) == driver_mod.MIN_STATS_FRAMES and short[0] <= 30 and short[-1] >= 32


def test_saved_driver_loads_and_refuses_a_tampered_file(tmp_path: Path) -> None:
    d = _driver(seed=3)
    path = tmp_path / "drv.safetensors"
    save_module(d.net, path, KIND, d.cfg.to_dict(), {"test": True})
    loaded = load_driver(str(path))
    audio = _speech(seed=1)
    np.testing.assert_array_equal(
        loaded.predict(audio, FPS, np.arange(30)), d.predict(audio, FPS, np.arange(30))
    )
    assert loaded.cfg == d.cfg
    # A manifest entry pins the SHA-256; default_driver names it.
    manifest = tmp_path / "manifest.toml"
    manifest.write_text(
        'default_driver = "drv"\n[[checkpoint]]\nname = "drv"\nkind = "mouth-driver"\n'
        f'file = "drv.safetensors"\nconfig = "drv.json"\nsha256 = "{sha256_file(path)}"\n'
        'provenance = "test"\nlicence = "test"\n'
    )
    assert load_driver(manifest=manifest).name.startswith("drv")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # One flipped bit in the last tensor.
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load_driver("drv", manifest=manifest)
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load_driver(str(path))  # Against the JSON's digest.
    record = json.loads(path.with_suffix(".json").read_text())
    record["kind"] = "syncnet"
    path.with_suffix(".json").write_text(json.dumps(record))
    with pytest.raises(WeightsError, match="not 'mouth-driver'"):
        load_driver(str(path))


def test_manifest_default_driver_must_name_a_driver(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.toml"
    entry = (
        '[[checkpoint]]\nname = "g"\nfile = "g.safetensors"\nconfig = "g.json"\n'
        'sha256 = "0"\nprovenance = "x"\nlicence = "x"\n'
    )
    manifest.write_text('default_driver = "g"\n' + entry)  # g is a generator.
    with pytest.raises(WeightsError, match="default_driver 'g' is not a listed mouth-driver"):
        load_manifest(manifest)
    manifest.write_text(entry)
    with pytest.raises(WeightsError, match="no mouth driver named and no default_driver"):
        load_driver(manifest=manifest)
    with pytest.raises(WeightsError, match="no mouth-driver checkpoint named 'g'"):
        load_driver("g", manifest=manifest)


def test_bundled_driver_loads_through_the_manifest() -> None:
    """mouth-driver-v1: no longer the default (research-only; the default is the rule-based
    viseme-table), still loadable by name."""
    m = load_manifest()
    entry = m.entries[BUNDLED]
    assert entry.kind == KIND and entry.licence.startswith("research-only")
    assert sha256_file(entry.file) == entry.sha256
    assert entry.file.stat().st_size < 2 * 1024 * 1024
    d = load_driver(BUNDLED)
    assert 6 <= d.components <= 8
    record = json.loads(entry.config.read_text())
    assert record["kind"] == KIND and record["provenance"]["steps"] > 0
    z = d.predict(_speech(), FPS, np.arange(50))
    assert z.shape == (50, d.components) and np.isfinite(z).all()
    # The basis is orthonormal and component 1 opens the mouth.
    basis = d.net.basis.numpy().astype(np.float64)
    np.testing.assert_allclose(basis @ basis.T, np.eye(d.components), atol=1e-4)
    closed, opened = d.unproject(np.eye(d.components)[:1] * [[-1.0], [1.0]])
    gap = lambda s: (s[[19, 18, 17], 1] - s[[13, 14, 15], 1]).mean()  # noqa: E731 (67-65 − 61-63)
    assert gap(opened) > gap(closed)
