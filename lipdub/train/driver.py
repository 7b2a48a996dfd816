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

from lipdub.analysis.mouth_shape import MOUTH_POINTS, mouth_shape
from lipdub.data.clips import Clip, load_clips
from lipdub.errors import ConfigError
from lipdub.model.driver import (
    KIND,
    SHAPE_DIM,
    Driver,
    DriverConfig,
    MouthDriverNet,
    map_to_actor,
)
from lipdub.model.engine import select_device
from lipdub.train.checkpoints import save_module
from lipdub.train.driver_data import (
    OPENING,
    DriverClip,
    fit_basis,
    prepare_clips,
    shapes_gap,
    std_floor,
)
from lipdub.train.loop import run_steps
from lipdub.train.validate import split_speakers

log = logging.getLogger(__name__)

SEQ_FRAMES = 32  # Predicted frames per training window (1.1–1.3 s).


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


@dataclass(frozen=True)
class _Basis:
    """The training shapes' PCA basis and per-component z floor (module doc, steps 2-3)."""

    mean: np.ndarray
    basis: np.ndarray
    explained: np.ndarray
    floor: np.ndarray

    @classmethod
    def fit(cls, train: Sequence[Clip], cfg: DriverConfig) -> _Basis:
        shapes = [mouth_shape(c.landmarks) for c in train]
        mean, basis, explained = fit_basis(shapes, cfg.components)
        coefs = [((s.reshape(len(s), SHAPE_DIM) - mean) @ basis.T) for s in shapes]
        log.info(
            "basis: %d components explain %.3f of the mouth motion",
            cfg.components,
            explained.sum(),
        )
        return cls(mean, basis, explained, std_floor(coefs))

    def items(self, clips: Sequence[Clip], cfg: DriverConfig) -> list[DriverClip]:
        return prepare_clips(clips, self.mean, self.basis, self.floor, cfg)


class _KeepBest:
    """At each validation interval: score the validation speakers, keep the weights with the
    best opening correlation (``r_gap``), write the interval's JSON line."""

    def __init__(
        self,
        net: MouthDriverNet,
        val_items: list[DriverClip],
        basis: _Basis,
        dev: torch.device,
        logf: Any,
    ):
        self.net, self.val_items, self.dev, self.logf = net, val_items, dev, logf
        self.unproject = _unproject(basis.mean, basis.basis)
        self.step, self.r_gap = 0, -np.inf
        self.state: dict[str, Any] | None = None  # The best weights so far.

    def score(self) -> dict[str, Any]:
        predicted = predict_cached(self.net, self.val_items, self.dev)
        return score(self.val_items, predicted, self.unproject)

    def __call__(self, step: int, loss: float, seconds: float) -> None:
        record: dict[str, Any] = {
            "step": step,
            "seconds": round(seconds, 1),
            "loss": round(loss, 5),
        }
        if self.val_items:
            val = record["val"] = self.score()
            if val["r_gap"] > self.r_gap:
                self.step, self.r_gap = step, val["r_gap"]
                self.state = copy.deepcopy(self.net.state_dict())
            log.info(
                "step %d validation r_opening %.3f r_gap %.3f",
                step,
                val["r_opening"],
                val["r_gap"],
            )
        if self.logf is not None:
            self.logf.write(json.dumps(record) + "\n")
            self.logf.flush()

    def restore(self, last_step: int) -> int:
        """Go back to the best weights if the last ones validate worse; the step kept."""
        if self.val_items and self.state is not None and self.score()["r_gap"] < self.r_gap:
            self.net.load_state_dict(self.state)
            return self.step
        return last_step


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
    basis = _Basis.fit(train, cfg)
    items, val_items = basis.items(train, cfg), basis.items(val, cfg)
    windows = DriverWindows(items, cfg, settings)
    net = MouthDriverNet(cfg)
    net.set_basis(basis.mean, basis.basis)
    net.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)

    def step_loss(step: int) -> torch.Tensor:
        net.train()
        mel, z = windows.batch(step)
        return F.mse_loss(net(mel.to(dev)), z.to(dev))

    logf = open(log_path, "a") if log_path is not None else None  # noqa: SIM115 (closed below)
    keep = _KeepBest(net, val_items, basis, dev, logf)
    try:
        done = run_steps(
            step_loss,
            opt,
            settings.max_steps,
            settings.max_minutes,
            every=settings.val_every,
            on_interval=keep,
            what="z MSE",
        )
    finally:
        if logf is not None:
            logf.close()
    report: dict[str, Any] = {
        "steps": done.steps,
        "kept_step": keep.restore(done.steps),
        "seconds": round(done.seconds, 1),
        "device": str(dev),
        "first_loss": done.first_loss(),
        "last_loss": done.last_loss(),
        "explained_variance": [round(float(v), 4) for v in basis.explained],
    }
    net = net.cpu().eval()
    report.update(_scores(Driver(copy.deepcopy(net)), items, val_items, basis.items(test, cfg)))
    record = {
        **(provenance or {}),
        "clips": len(train),
        "frames": sum(len(c) for c in train),
        "speakers": len({c.speaker for c in train}),
        "val_speakers": sorted({c.speaker for c in val}),
        "std_floor": [round(float(v), 6) for v in basis.floor],
        "settings": asdict(settings),
        "date": datetime.date.today().isoformat(),
        **report,
    }
    save_module(net, Path(out), KIND, cfg.to_dict(), record)
    return report


def _scores(
    driver: Driver, train: list[DriverClip], val: list[DriverClip], test: list[DriverClip]
) -> dict[str, Any]:
    """The finished driver's scores through its inference path, per split (None: empty)."""
    return {
        name: score(items, predict_audio(driver, items), driver.unproject) if items else None
        for name, items in (("train", train), ("val", val), ("test", test))
    }


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
