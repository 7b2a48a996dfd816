"""``lipdub train driver``: the exemplar path's audio → mouth-shape driver (``model.driver``).

Labels cost nothing extra: each prepared clip's analysis landmarks become mouth shapes
(:func:`lipdub.analysis.mouth_shape.mouth_shape`), and its audio, shifted by the clip's AV offset,
gives the mel windows. The steps:

1. Speakers named by ``--val-speakers`` are held out of the training split (for validation and
   for choosing the checkpoint); the test split is only measured at the end.
2. Basis: PCA of the training shapes after removing each clip's mean shape (:func:`fit_basis`);
   component 1 is signed so that a larger coefficient is a wider inner-lip gap.
3. Targets: per clip and component, z = (c − mean_clip c) / max(std_clip c, floor_k), with
   floor_k = :data:`STD_FLOOR` × the pooled within-clip std, so a clip where a component hardly
   moves does not turn landmark jitter into ±3σ targets.
4. Audio: each clip's mel windows at the audio frames of its track (+ the AV offset), with r
   frames of context each side, each band standardised over the clip as
   :meth:`~lipdub.model.driver.Driver.predict` standardises a track (:func:`clip_mels`).
5. Training: random windows of :data:`SEQ_FRAMES` frames, MSE on all K z-scores; Adam. Every
   ``val_every`` steps one JSON line (step, loss, validation correlations) goes to the log, and
   the weights with the best validation opening correlation (``r_gap``) are kept.
6. Report, through :meth:`lipdub.model.driver.Driver.predict` (the inference path, mel windows
   computed from the audio): per component the Pearson correlation of predicted and true z,
   pooled over the frames of the validation speakers and of the test split; the mouth-opening
   correlation, per clip, between the inner-lip gap (:func:`lipdub.analysis.masks.lip_gap`) of
   the predicted shapes (z mapped onto the clip's own range, :func:`map_to_actor`) and of the
   real ones; and, for scale, the same correlation for the frame's loudness alone.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lipdub.analysis.masks import INNER_LOWER, INNER_UPPER, lip_gap
from lipdub.analysis.mouth_shape import MOUTH_POINTS, mouth_shape
from lipdub.analysis.records import MOUTH
from lipdub.data.clips import Clip, load_clips
from lipdub.errors import ConfigError
from lipdub.model.driver import (
    KIND,
    SHAPE_DIM,
    BandStats,
    Driver,
    DriverConfig,
    MouthDriverNet,
    map_to_actor,
    stats_frames,
)
from lipdub.model.engine import select_device
from lipdub.model.mel import MelFrontend
from lipdub.train.checkpoints import save_module
from lipdub.train.loop import run_steps
from lipdub.train.validate import split_speakers

log = logging.getLogger(__name__)

SEQ_FRAMES = 32  # Predicted frames per training window (1.1–1.3 s).
STD_FLOOR = 0.25  # Per-clip std floor, as a fraction of the pooled within-clip std.
OPENING = 0  # Index of the opening component (signed by fit_basis).


@dataclass(frozen=True)
class DriverTrainSettings:
    """Knobs of a driver run."""

    batch_size: int = 16  # Windows of SEQ_FRAMES frames per step.
    lr: float = 5e-4  # Adam learning rate (2e-3 overfits sooner, same plateau).
    weight_decay: float = 1e-4  # Adam's L2 penalty.
    max_steps: int = 100_000  # Step budget (the time budget usually stops it first).
    max_minutes: float | None = None  # Wall-time budget of the training loop.
    val_every: int = 100  # Steps between validations / JSON log lines.
    seed: int = 0  # Sampling and initialisation seed.


@dataclass
class DriverClip:
    """One clip turned into the driver's inputs and targets."""

    clip: Clip
    shapes: np.ndarray  # (T, 20, 2) true mouth shapes.
    coef: np.ndarray  # (T, K) their PCA coefficients.
    z: np.ndarray  # (T, K) z-score targets.
    mel: np.ndarray  # (T + 2r, 1, n_mels, W) normalised windows of frames −r … T − 1 + r.
    loudness: np.ndarray  # (T,) the frames' raw loudness (the baseline of the report).


# ---------------------------------------------------------------------------------------------
# Basis, targets, audio


def fit_basis(shapes: Sequence[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of mouth motion: ``shapes`` is one (T, 20, 2) array per clip.

    Returns:
        mean (40,) over all frames, basis (K, 40) with orthonormal rows (the top K principal axes
        of the shapes minus their clip's mean), and the share of that variance each explains.

    Raises:
        ConfigError: fewer frames than components.
    """
    flat = [np.asarray(s, np.float64).reshape(len(s), SHAPE_DIM) for s in shapes]
    dev = np.concatenate([f - f.mean(0) for f in flat])
    if len(dev) <= k:
        raise ConfigError(f"{len(dev)} frame(s) cannot fit {k} mouth-shape components")
    _, sing, vt = np.linalg.svd(dev, full_matrices=False)
    basis = vt[:k].copy()
    gap = _gap_direction()
    for i in range(k):  # A deterministic sign: opening grows with component 1, else max +.
        ref = gap @ basis[i] if i == OPENING else basis[i, np.argmax(np.abs(basis[i]))]
        if ref < 0:
            basis[i] = -basis[i]
    explained = sing[:k] ** 2 / max(float((sing**2).sum()), 1e-12)
    return np.concatenate(flat).mean(0), basis, explained


def _gap_direction() -> np.ndarray:
    """(40,) d with d·(s − s₀) ≈ the change in inner-lip gap of the flattened shape s (y only)."""
    d = np.zeros((MOUTH_POINTS, 2))
    d[[i - MOUTH.start for i in INNER_LOWER], 1] += 1 / 3
    d[[i - MOUTH.start for i in INNER_UPPER], 1] -= 1 / 3
    return d.reshape(-1)


def std_floor(coefs: Sequence[np.ndarray]) -> np.ndarray:
    """(K,) floor of the per-clip std: :data:`STD_FLOOR` × the pooled within-clip std."""
    dev = np.concatenate([c - c.mean(0) for c in coefs])
    return STD_FLOOR * dev.std(0)


def z_scores(coef: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """(T, K) per-clip z-scores of ``coef`` with the std floored (module doc, step 3)."""
    return ((coef - coef.mean(0)) / np.maximum(coef.std(0), floor)).astype(np.float32)


def shapes_gap(shapes: np.ndarray) -> np.ndarray:
    """Inner-lip gap (IOD units) of (..., 20, 2) mouth shapes, by ``analysis.masks.lip_gap``."""
    full = np.zeros((*shapes.shape[:-2], 68, 2))
    full[..., MOUTH, :] = shapes
    return lip_gap(full)


def clip_windows(clip: Clip, audio_frames: np.ndarray, frontend: MelFrontend) -> np.ndarray:
    """(N, 1, n_mels, W) float16 mel windows of the clip's audio at ``audio_frames``; windows that
    ``data prepare`` precomputed are reused, the others computed from the clip's audio."""
    want = np.asarray(audio_frames, np.int64)
    pos = np.clip(np.searchsorted(clip.frames, want), 0, len(clip.frames) - 1)
    have = clip.frames[pos] == want
    out = np.empty((len(want), *clip.mel.shape[1:]), np.float16)
    out[have] = clip.mel[pos[have]]
    if (~have).any():
        rate = frontend.cfg.sample_rate
        out[~have] = frontend.windows(clip.audio, clip.fps, want[~have], rate).numpy()
    return out


def clip_mels(clip: Clip, context: int, frontend: MelFrontend) -> np.ndarray:
    """(T + 2r, 1, n_mels, W) float32 mel windows of the audio of track frames −r … T − 1 + r,
    normalised as :meth:`Driver.predict` normalises a track (:class:`BandStats` over the track).

    The audio of video frame k is at k + offset (the clip's AV offset).
    """
    audio = clip.frames + clip.offset  # Audio frame numbers of the track.
    first, last = int(audio[0]), int(audio[-1])
    around = np.concatenate(
        [np.arange(first - context, first), audio, np.arange(last + 1, last + 1 + context)]
    )
    stats = BandStats.of([torch.from_numpy(clip_windows(clip, stats_frames(audio), frontend))])
    raw = torch.from_numpy(clip_windows(clip, around, frontend).astype(np.float32))
    return stats.apply(raw).numpy()


def frame_loudness(mel: np.ndarray) -> np.ndarray:
    """(T,) mean of the two centre columns of each (1, n_mels, W) window: the loudness baseline."""
    w = mel.shape[-1]
    return mel[:, 0, :, w // 2 - 1 : w // 2 + 1].mean((-1, -2))


def prepare_clips(
    clips: Sequence[Clip],
    mean: np.ndarray,
    basis: np.ndarray,
    floor: np.ndarray,
    cfg: DriverConfig,
) -> list[DriverClip]:
    """Shapes, coefficients, targets and context-padded mel windows of each clip."""
    frontend = MelFrontend(cfg.mel)
    out = []
    for c in clips:
        shapes = mouth_shape(c.landmarks)
        coef = ((shapes.reshape(len(c), SHAPE_DIM) - mean) @ basis.T).astype(np.float32)
        loud = frame_loudness(clip_windows(c, c.frames + c.offset, frontend).astype(np.float32))
        z = z_scores(coef, floor)
        out.append(DriverClip(c, shapes, coef, z, clip_mels(c, cfg.context, frontend), loud))
    return out


# ---------------------------------------------------------------------------------------------
# Metrics


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 3 or a.std() < 1e-12 or b.std() < 1e-12:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def score(items: Sequence[DriverClip], preds: Sequence[np.ndarray], unproject: Callable) -> dict:
    """Correlations of predicted with true mouths over ``items`` (module doc, step 6).

    ``preds`` holds one (T, K) z array per item; ``unproject`` maps (N, K) coefficients to shapes.
    """
    z_true = np.concatenate([it.z for it in items])
    z_pred = np.concatenate(list(preds))
    k = z_true.shape[1]
    r_z = [_pearson(z_pred[:, i], z_true[:, i]) for i in range(k)]
    per_clip = np.array(
        [
            [_pearson(p[:, i], it.z[:, i]) for i in range(k)]
            for it, p in zip(items, preds, strict=True)
        ]
    )
    gap_r, loud_r = [], []
    for it, p in zip(items, preds, strict=True):
        true_gap = shapes_gap(it.shapes)
        pred_gap = shapes_gap(unproject(map_to_actor(p, it.coef)))
        gap_r.append(_pearson(pred_gap, true_gap))
        loud_r.append(_pearson(it.loudness, true_gap))
    return {
        "clips": len(items),
        "frames": len(z_true),
        "r_z": [round(v, 4) for v in r_z],
        "r_opening": round(r_z[OPENING], 4),
        "r_z_per_clip": [round(float(v), 4) for v in np.nanmean(per_clip, axis=0)],
        "r_gap": round(float(np.nanmean(gap_r)), 4),
        "r_gap_loudness": round(float(np.nanmean(loud_r)), 4),
        "z_pred_std": [round(float(v), 3) for v in z_pred.std(0)],
    }


@torch.no_grad()
def predict_cached(
    net: MouthDriverNet, items: Sequence[DriverClip], device: torch.device
) -> list[np.ndarray]:
    """(T, K) z of each item from its cached mel windows (validation while training)."""
    was = net.training
    net.eval()
    out = [
        net(torch.from_numpy(it.mel.astype(np.float32))[None].to(device))[0].cpu().numpy()
        for it in items
    ]
    net.train(was)
    return out


def predict_audio(driver: Driver, items: Sequence[DriverClip]) -> list[np.ndarray]:
    """(T, K) z of each item through :meth:`Driver.predict` on the clip's audio (+ AV offset)."""
    return [
        driver.predict(it.clip.audio, it.clip.fps, it.clip.frames + it.clip.offset) for it in items
    ]


# ---------------------------------------------------------------------------------------------
# Training


class DriverWindows:
    """Random training windows: (mel (B, L + 2r, 1, n_mels, W), z (B, L, K)), seeded per step."""

    def __init__(
        self, items: Sequence[DriverClip], cfg: DriverConfig, settings: DriverTrainSettings
    ) -> None:
        self.items = [it for it in items if len(it.z) >= SEQ_FRAMES]
        if not self.items:
            raise ConfigError(f"no training clip has the {SEQ_FRAMES} frames a window needs")
        sizes = np.array([len(it.z) - SEQ_FRAMES + 1 for it in self.items], np.float64)
        self.weights = sizes / sizes.sum()
        self.cfg, self.settings = cfg, settings

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.settings.seed, step])
        r, n = self.cfg.context, SEQ_FRAMES
        mels, zs = [], []
        for _ in range(self.settings.batch_size):
            it = self.items[rng.choice(len(self.items), p=self.weights)]
            t0 = int(rng.integers(0, len(it.z) - n + 1))
            mels.append(it.mel[t0 : t0 + n + 2 * r])
            zs.append(it.z[t0 : t0 + n])
        return torch.from_numpy(np.stack(mels)), torch.from_numpy(np.stack(zs))


def train_driver_on(
    train: Sequence[Clip],
    val: Sequence[Clip],
    test: Sequence[Clip],
    out: Path,
    cfg: DriverConfig | None = None,
    settings: DriverTrainSettings = DriverTrainSettings(),
    device: str = "auto",
    log_path: Path | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit the basis, train, save ``out`` (+ JSON) and return the report (module doc).

    Arguments:
        train, val, test: clips to train on, to validate on (may be empty) and to report on
            at the end (may be empty).
        out: the ``.safetensors`` to write.
        cfg: the network's architecture (None = :class:`DriverConfig`'s defaults).
        settings: the run's knobs.
        device: "auto", "cpu", "cuda" or "cuda:N" for training (inference runs on the CPU).
        log_path: JSON lines file for the interval records (None = none).
        provenance: extra provenance for the JSON record (data folder, command…).
    """
    cfg = cfg or DriverConfig()
    torch.manual_seed(settings.seed)
    dev = select_device(device)
    shapes = [mouth_shape(c.landmarks) for c in train]
    mean, basis, explained = fit_basis(shapes, cfg.components)
    coefs = [((s.reshape(len(s), SHAPE_DIM) - mean) @ basis.T) for s in shapes]
    floor = std_floor(coefs)
    log.info(
        "basis: %d components explain %.3f of the mouth motion", cfg.components, explained.sum()
    )
    items = prepare_clips(train, mean, basis, floor, cfg)
    val_items = prepare_clips(val, mean, basis, floor, cfg)
    windows = DriverWindows(items, cfg, settings)
    net = MouthDriverNet(cfg)
    net.set_basis(mean, basis)
    net.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    best: dict[str, Any] = {"step": 0, "r_gap": -np.inf, "state": None}
    logf = open(log_path, "a") if log_path is not None else None  # noqa: SIM115 (closed below)

    def step_loss(step: int) -> torch.Tensor:
        net.train()
        mel, z = windows.batch(step)
        return F.mse_loss(net(mel.to(dev)), z.to(dev))

    def on_interval(step: int, loss: float, seconds: float) -> None:
        record: dict[str, Any] = {
            "step": step,
            "seconds": round(seconds, 1),
            "loss": round(loss, 5),
        }
        if val_items:
            record["val"] = score(
                val_items, predict_cached(net, val_items, dev), _unproject(mean, basis)
            )
            if record["val"]["r_gap"] > best["r_gap"]:
                best.update(
                    step=step, r_gap=record["val"]["r_gap"], state=copy.deepcopy(net.state_dict())
                )
            log.info(
                "step %d validation r_opening %.3f r_gap %.3f",
                step,
                record["val"]["r_opening"],
                record["val"]["r_gap"],
            )
        if logf is not None:
            logf.write(json.dumps(record) + "\n")
            logf.flush()

    try:
        done = run_steps(
            step_loss,
            opt,
            settings.max_steps,
            settings.max_minutes,
            every=settings.val_every,
            on_interval=on_interval,
            what="z MSE",
        )
    finally:
        if logf is not None:
            logf.close()
    last_step = done.steps
    if val_items and best["state"] is not None:
        final = score(val_items, predict_cached(net, val_items, dev), _unproject(mean, basis))
        if final["r_gap"] < best["r_gap"]:
            net.load_state_dict(best["state"])
            last_step = best["step"]
    net = net.cpu().eval()
    driver = Driver(copy.deepcopy(net))
    test_items = prepare_clips(test, mean, basis, floor, cfg)
    report: dict[str, Any] = {
        "steps": done.steps,
        "kept_step": last_step,
        "seconds": round(done.seconds, 1),
        "device": str(dev),
        "first_loss": done.first_loss(),
        "last_loss": done.last_loss(),
        "explained_variance": [round(float(v), 4) for v in explained],
        "train": score(items, predict_audio(driver, items), driver.unproject),
        "val": score(val_items, predict_audio(driver, val_items), driver.unproject)
        if val_items
        else None,
        "test": score(test_items, predict_audio(driver, test_items), driver.unproject)
        if test_items
        else None,
    }
    record = {
        **(provenance or {}),
        "clips": len(train),
        "frames": sum(len(c) for c in train),
        "speakers": len({c.speaker for c in train}),
        "val_speakers": sorted({c.speaker for c in val}),
        "std_floor": [round(float(v), 6) for v in floor],
        "settings": asdict(settings),
        "date": datetime.date.today().isoformat(),
        **report,
    }
    save_module(net, Path(out), KIND, cfg.to_dict(), record)
    return report


def _unproject(mean: np.ndarray, basis: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return lambda coef: (coef @ basis + mean).reshape(-1, MOUTH_POINTS, 2)


def train_driver(
    data_dir: Path,
    out: Path,
    settings: DriverTrainSettings = DriverTrainSettings(),
    cfg: DriverConfig | None = None,
    val_speakers: Sequence[str] = (),
    device: str = "auto",
    train_split: str = "train",
    test_split: str | None = "test",
    log_path: Path | None = None,
) -> dict[str, Any]:
    """Train the driver on the prepared clips of ``data_dir`` (module doc); see
    :func:`train_driver_on` for the rest.

    Raises:
        ConfigError: no clips, a validation speaker with no clip, or nothing left to train on.
    """
    clips = load_clips(data_dir, train_split)
    train, val = split_speakers(clips, val_speakers) if val_speakers else (clips, [])
    test = load_clips(data_dir, test_split) if test_split else []
    provenance = {"data": str(data_dir), "split": train_split, "test_split": test_split}
    return train_driver_on(train, val, test, out, cfg, settings, device, log_path, provenance)
