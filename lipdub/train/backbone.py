"""``lipdub train generator``: the StyleSync generator against a StyleGAN2 discriminator.

Per step, B samples of 5 consecutive frames (MaLS runs over each 5-frame window):

    I^g   = G([I_t^m ‖ I_ref], mel_t)                         t = t0..t0+4
    L_g   = L_adv + λ_r·L_rec + λ_s·L_sync,  λ_r = 10, λ_s = 1   (StyleSync §3.4)
    L_rec = L1(I^g, I) + L1_M(I^g, I) + perceptual(I^g, I)     (losses.py: VGG19 or D-FM)
    (+ λ_l·L_lmk with ``--landmarks``: mouth-landmark error of the composite, landmarks.py)
    L_D   = softplus(D(I^g)) + softplus(−D(I)) + lazy R1 every R1_EVERY steps

L1_M is the L1 inside the mask M only (mean over the masked pixels). The paper's L1 runs over the
whole crop, where the unmasked 75 % is given to G as input and is easy; on a small CPU budget
that drowns the mouth, so the masked region is counted a second time. MLP_Δw is left at zero and
out of the optimiser: ΔW belongs to personalization, not to the general model.

``--ema-half-life N`` keeps an exponential moving average of G's weights (half-life N steps, as
StyleGAN2 keeps one for release and evaluation) and writes it as the released generator; the
state file carries it across ``--resume``. Off by default, so earlier recipes reproduce exactly.

``--val-speakers a,b,c`` holds those speakers' clips out of training and validates on them every
``--val-every`` steps (:mod:`lipdub.train.validate`: LMD against the zeroed-audio and copy-reference
baselines, measured as ``lipdub eval`` does); the best checkpoint so far is kept in ``<out>/best/``.

``--init NAME`` starts G from an existing checkpoint (a warm start, e.g. to add L_sync with a new
SyncNet to an earlier run); D starts fresh.

The frozen SyncNet (``--syncnet``) scores the 5 generated frames against the middle frame's mel
window. Checkpoints (generator in the release format, discriminator, optimizer state) are
written every ``save_every_s`` seconds and at the end; ``--resume`` continues from them. Sample
grids (masked input | reference | output | target) go to ``<out>/samples/`` as PNG.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import default_collate

from lipdub.data.clips import load_clips
from lipdub.errors import ConfigError
from lipdub.model.checkpoint import (
    resolve_generator,
)
from lipdub.model.config import GeneratorConfig
from lipdub.model.engine import select_device
from lipdub.model.generator import StyleSyncGenerator
from lipdub.model.syncnet_file import resolve_syncnet
from lipdub.train.dataset import GeneratorWindows
from lipdub.train.generator_trainer import (
    BEST_DIR,
    GENERATOR_FILE,
    STATE_FILE,
    VALIDATION_FILE,
    GeneratorTrainer,
    GenTrainSettings,
)
from lipdub.train.landmarks import load_landmark_net, mouth_labels
from lipdub.train.loop import LoopResult, train_loop
from lipdub.train.validate import Validator, split_speakers

log = logging.getLogger(__name__)


def _u8(x: torch.Tensor) -> np.ndarray:
    """(3, S, S) in [-1, 1] → (S, S, 3) uint8."""
    return ((x.detach().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def write_grid(path: Path, batch: dict[str, torch.Tensor], fake: torch.Tensor) -> None:
    """PNG: one row per sample (middle frame): masked input | reference | output | target."""
    mid = fake.shape[1] // 2
    rows = []
    for i in range(fake.shape[0]):
        target = batch["target"][i, mid]
        masked = target * (1 - batch["mask"][i, mid])
        cells = [masked, batch["reference"][i], fake[i, mid], target]
        rows.append(np.concatenate([_u8(c) for c in cells], axis=1))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))


def train_generator(
    data_dir: Path,
    out_dir: Path,
    cfg: GeneratorConfig,
    settings: GenTrainSettings | None = None,
    device: str = "auto",
    syncnet: str | None = None,
    vgg19: Path | None = None,
    resume: bool = False,
    init: str | None = None,
    landmarks: str | None = None,
) -> dict[str, Any]:
    """Train (or resume) a generator; return a summary (also in ``<out>/report.json``).

    ``landmarks`` (a :mod:`lipdub.train.landmarks` regressor, manifest name or path) adds L_lmk
    and, with ``settings.lambda_gap``, L_gap;
    the mouth landmarks it is compared with are fitted by dlib on every training crop first
    (≈ 3 ms a frame).
    """
    settings = settings or GenTrainSettings()
    out_dir = Path(out_dir)
    _check_settings(settings, landmarks)
    dev = select_device(device)
    clips = load_clips(data_dir, settings.split)
    val_clips: list = []
    if settings.val_speakers:
        clips, val_clips = split_speakers(clips, settings.val_speakers)
    net = resolve_syncnet(syncnet) if syncnet else None
    if net is None:
        log.warning("no --syncnet: training without L_sync (the mouth will not follow audio)")
    resuming = resume and (out_dir / STATE_FILE).is_file()
    start = _initial_generator(init, cfg) if init and not resuming else None
    landmark_net = load_landmark_net(landmarks) if landmarks else None
    trainer = GeneratorTrainer(
        cfg, settings, dev, net, vgg19, init=start, landmark_net=landmark_net
    )
    if resuming:
        trainer.resume(out_dir)
    points = mouth_labels(clips) if landmark_net is not None else None
    ds = GeneratorWindows(
        clips,
        10**9,
        settings.augment,
        settings.seed,
        cfg.mel,
        mouth_points=points,
        near_ref_prob=settings.near_reference,
    )
    provenance = {
        "data": str(data_dir),
        "split": settings.split,
        **_data_record(clips, val_clips),
        "device": str(dev),
        "syncnet": syncnet,
        "init": init,
        "perceptual": "vgg19" if vgg19 else "discriminator-feature-matching",
        "landmarks": str(landmarks) if landmarks else None,
        "settings": {k: v for k, v in asdict(settings).items() if k != "augment"},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    validation = _Validation(out_dir, Validator(val_clips)) if val_clips else None
    if validation and start is not None and validation.best is None:
        validation.run(trainer, provenance)  # The starting point is a candidate too.
    done = _run(trainer, ds, settings, out_dir, provenance, validation)
    if validation and validation.last_step != trainer.step_count:
        validation.run(trainer, provenance)
    report = _report(done, trainer, settings.batch_size, out_dir)
    if validation:
        report["validation"] = validation.history
        report["best"] = validation.best
    (out_dir / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def _run(
    trainer: GeneratorTrainer,
    ds: GeneratorWindows,
    settings: GenTrainSettings,
    out_dir: Path,
    provenance: dict[str, Any],
    validation: _Validation | None,
) -> LoopResult:
    """The steps through :func:`train.loop.train_loop`: a JSON line per step in
    ``train_log.jsonl``, a sample grid every ``sample_every`` steps, validation and saves at
    their intervals."""
    samples_dir = out_dir / "samples"

    def step(k: int) -> dict[str, float]:
        batch = default_collate(
            [ds[k * settings.batch_size + i] for i in range(settings.batch_size)]
        )
        values, fake = trainer.step(batch)
        if trainer.step_count % settings.sample_every == 0 or trainer.step_count == first + 1:
            write_grid(samples_dir / f"step_{trainer.step_count:06d}.png", batch, fake)
        return values

    def after_step(steps: int, values: Mapping[str, float], seconds: float) -> None:
        trainer.seconds = seconds_before + seconds
        logf.write(json.dumps({"step": steps, **values}) + "\n")
        if steps % settings.log_every == 0:
            logf.flush()

    first, seconds_before = trainer.step_count, trainer.seconds
    intervals = (
        [(settings.val_every, lambda _: validation.run(trainer, provenance))] if validation else []
    )
    with open(out_dir / "train_log.jsonl", "a") as logf:
        return train_loop(
            step,
            max_steps=settings.max_steps,
            max_minutes=settings.max_minutes,
            start=first,
            log_every=settings.log_every,
            intervals=intervals,
            save=lambda _: trainer.save(out_dir, provenance),
            save_every_s=settings.save_every_s,
            after_step=after_step,
        )


def _data_record(clips: list, val_clips: list) -> dict[str, Any]:
    """What the run trained and validated on, for the checkpoint's provenance."""
    return {
        "clips": len(clips),
        "frames": sum(len(c) for c in clips),
        "speakers": len({c.speaker for c in clips}),
        "val_speakers": sorted({c.speaker for c in val_clips}),
    }


def _check_settings(settings: GenTrainSettings, landmarks: str | None) -> None:
    """Refuse settings that cannot train (one line naming the option), before any data loads."""
    if min(settings.lambda_lmk, settings.lambda_gap, settings.lambda_sync) < 0:
        raise ConfigError("--lambda-lmk, --lambda-gap and --lambda-sync must not be negative")
    if settings.gate_lr_mult <= 0:
        raise ConfigError(f"--gate-lr-mult must be positive, not {settings.gate_lr_mult}")
    if settings.lambda_gap and not landmarks:
        raise ConfigError("--lambda-gap needs --landmarks (the regressor that measures the gap)")
    if settings.val_speakers and settings.val_every < 1:
        raise ConfigError(f"--val-every must be at least 1, not {settings.val_every}")


def _initial_generator(init: str, cfg: GeneratorConfig) -> StyleSyncGenerator:
    """The ``--init`` generator, checked to be of ``cfg``'s architecture (gates aside: an
    ungated checkpoint may start a gated run, not the other way round)."""
    start, _ = resolve_generator(init)
    if replace(start.cfg, reference_gate=cfg.reference_gate) != cfg:
        raise ConfigError(f"--init {init}: a {start.cfg.name!r} generator, not {cfg.name!r}")
    if start.cfg.reference_gate and not cfg.reference_gate:
        raise ConfigError(f"--init {init} has reference gates: train it with --reference-gate")
    return start


def _report(
    done: LoopResult, trainer: GeneratorTrainer, batch_size: int, out_dir: Path
) -> dict[str, Any]:
    """The run's summary: checkpoint, steps, speed, first and last losses."""
    run_s, run_steps = done.seconds, done.run_steps
    return {
        "checkpoint": str(out_dir / GENERATOR_FILE),
        "steps": trainer.step_count,
        "run_steps": run_steps,
        "run_seconds": round(run_s, 1),
        "train_seconds_total": round(trainer.seconds, 1),
        "steps_per_s": round(run_steps / max(run_s, 1e-9), 4),
        "samples_per_s": round(run_steps * batch_size / max(run_s, 1e-9), 4),
        "frames_per_s": round(run_steps * batch_size * 5 / max(run_s, 1e-9), 3),
        "first_losses": done.means(first=True),
        "last_losses": done.means(),
    }


def _json_safe(record: dict[str, Any]) -> dict[str, Any]:
    """NaN/∞ → null: gap-r is NaN on a still mouth; JSON readers other than Python's reject NaN."""
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()
    }


class _Validation:
    """Runs the validator, logs each result and keeps the best checkpoint (across resumes)."""

    def __init__(self, out_dir: Path, validator: Validator) -> None:
        self.validator = validator
        self.best_dir = out_dir / BEST_DIR
        self.log_path = out_dir / "val_log.jsonl"
        self.history: list[dict[str, float]] = []
        self.last_step = -1
        self.speakers = validator.speakers
        record = self.best_dir / VALIDATION_FILE
        self.best: dict[str, Any] | None = (
            json.loads(record.read_text()) if record.is_file() else None
        )
        if self.best is not None and self.best.get("speakers") != self.speakers:
            log.warning(
                "%s was validated on %s, this run on %s: its best is not comparable and will be "
                "replaced by this run's first validation",
                record,
                self.best.get("speakers"),
                self.speakers,
            )
            self.best = None

    def run(self, trainer: GeneratorTrainer, provenance: dict[str, Any]) -> None:
        """Validate the released generator now; keep it in ``best/`` if its margin is the best."""
        t0 = time.monotonic()
        result = {"step": trainer.step_count, **self.validator(trainer.release, trainer.dev)}
        self.last_step = trainer.step_count
        self.history.append(result)
        with open(self.log_path, "a") as fh:
            fh.write(json.dumps(_json_safe(result)) + "\n")
        best_margin = None if self.best is None else self.best.get("margin")
        better = best_margin is None or result["margin"] > best_margin
        log.info(
            "validation at step %d: LMD %.3f (audio zeroed %.3f, copy reference %.3f), "
            "margin %+.3f, PSNR %.2f (%.0f s)%s",
            result["step"],
            result["LMD"],
            result["LMD_zeroed"],
            result["LMD_copy"],
            result["margin"],
            result["PSNR"],
            time.monotonic() - t0,
            ", best so far: kept" if better else "",
        )
        if better:
            self.best_dir.mkdir(parents=True, exist_ok=True)
            trainer.save_release(
                self.best_dir / GENERATOR_FILE, {**provenance, "validation": result}
            )
            self.best = {**result, "speakers": self.speakers}
            (self.best_dir / VALIDATION_FILE).write_text(
                json.dumps(_json_safe(self.best), indent=1) + "\n"
            )
