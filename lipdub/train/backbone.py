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

import copy
import itertools
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from safetensors.torch import load_file
from torch.utils.data import default_collate

from lipdub.data.clips import load_clips
from lipdub.errors import ConfigError
from lipdub.model.checkpoint import (
    load_checkpoint,
    load_state,
    resolve_generator,
    save_checkpoint,
)
from lipdub.model.config import GeneratorConfig
from lipdub.model.discriminator import Discriminator
from lipdub.model.engine import select_device
from lipdub.model.generator import REF_GATES, StyleSyncGenerator
from lipdub.model.syncnet_file import resolve_syncnet
from lipdub.train import losses
from lipdub.train.checkpoints import (
    load_state_file,
    optimizer_tensors,
    restore_optimizer,
    save_module,
    save_state,
)
from lipdub.train.dataset import NEAR_REF_PROB, Augment, GeneratorWindows
from lipdub.train.landmarks import landmark_loss, load_landmark_net, mouth_labels
from lipdub.train.loop import train_loop
from lipdub.train.validate import Validator, split_speakers

log = logging.getLogger(__name__)

R1_EVERY = 16  # Lazy regularisation interval (StyleGAN2): R1 every 16 D steps, scaled by 16.
BETAS = (0.5, 0.99)  # Adam betas for G and D.
GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
STATE_FILE = "state.safetensors"
BEST_DIR = "best"  # The best validated generator (with --val-speakers).
VALIDATION_FILE = "validation.json"
# λ_l: L_lmk is in crop pixels (≈ 2 px on the training split at lite-v3), so 0.5 puts it near
# λ_r·L1_M (≈ 1.2) without letting the regressor's opinion outweigh the picture.
LAMBDA_LMK = 0.5


def discriminator_step(
    d: torch.nn.Module,
    opt_d: torch.optim.Optimizer,
    real: torch.Tensor,
    fake: torch.Tensor,
    step: int,
) -> torch.Tensor:
    """One D update: logistic loss, plus lazy R1 every R1_EVERY steps (StyleGAN2); the loss."""
    d.requires_grad_(True)
    l_d = losses.d_adversarial(d(real), d(fake.detach()))
    if step % R1_EVERY == 0:
        l_d = l_d + R1_EVERY * losses.r1_penalty(d, real)
    opt_d.zero_grad(set_to_none=True)
    l_d.backward()
    opt_d.step()
    return l_d


@dataclass(frozen=True)
class GenTrainSettings:
    """Knobs of a generator run."""

    batch_size: int = 2  # 5-frame windows per step.
    lr_g: float = 1e-3  # Generator learning rate.
    lr_d: float = 1e-3  # Discriminator learning rate.
    max_steps: int = 1_000_000  # Total step budget (over resumes).
    max_minutes: float | None = None  # Wall-time budget of this run.
    log_every: int = 10  # Steps between log lines.
    sample_every: int = 50  # Steps between sample grids.
    save_every_s: float = 300.0  # Seconds between checkpoints.
    seed: int = 0  # Initialisation and sampling seed.
    split: str = "train"  # Split to train on.
    lambda_lmk: float = LAMBDA_LMK  # Weight of L_lmk (used only with a landmark regressor).
    lambda_gap: float = 0.0  # Weight of L_gap, the inner-lip opening error (same regressor).
    # Weight of L_sync. The paper's 1 assumes a SyncNet expert; a weak in-project one (held-out
    # ranking 0.59) may pull the mouth towards motion it likes rather than the actor's.
    lambda_sync: float = losses.LAMBDA_SYNC
    # Half-life in steps of an exponential moving average of G's weights (StyleGAN2 releases and
    # evaluates such an average); 0 = off. With it on, the released generator is the average.
    ema_half_life: float = 0.0
    near_reference: float = NEAR_REF_PROB  # Share of references just outside the window.
    gate_lr_mult: float = 1.0  # Learning rate of the reference gates ÷ lr_g (--reference-gate).
    val_speakers: tuple[str, ...] = ()  # Speakers held out of training for validation.
    val_every: int = 500  # Steps between validations (with val_speakers).
    augment: Augment = field(default_factory=Augment)  # Augmentation ranges.


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


class GeneratorTrainer:
    """Holds G, D, their optimizers and the losses; one :meth:`step` per batch."""

    def __init__(
        self,
        cfg: GeneratorConfig,
        settings: GenTrainSettings,
        device: torch.device,
        syncnet: torch.nn.Module | None = None,
        vgg19: Path | None = None,
        init: StyleSyncGenerator | None = None,
        landmark_net: torch.nn.Module | None = None,
    ) -> None:
        torch.manual_seed(settings.seed)
        self.cfg, self.s, self.dev = cfg, settings, device
        self.g = StyleSyncGenerator(cfg)
        if init is not None:
            # A gate-less generator may start a gated one: its missing gates stay zero, so the
            # start is the same function (Eq. 1 exactly).
            load_state(self.g, init.state_dict(), Path("--init"), may_lack=REF_GATES)
        self.g.to(device)
        if self.g.delta_w is not None:  # ΔW stays exactly zero in the general model.
            torch.nn.init.zeros_(self.g.delta_w.fc1.weight)
            torch.nn.init.zeros_(self.g.delta_w.fc1.bias)
            self.g.delta_w.requires_grad_(False)
        self.d = Discriminator(cfg).to(device)
        self.opt_g = torch.optim.Adam(self._g_param_groups(), betas=BETAS)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=settings.lr_d, betas=BETAS)
        self.syncnet = syncnet.to(device).eval().requires_grad_(False) if syncnet else None
        self.vgg = losses.VGG19Perceptual(vgg19).to(device) if vgg19 else None
        self.landmark_net = (
            landmark_net.to(device).eval().requires_grad_(False) if landmark_net else None
        )
        self.g_ema = (
            copy.deepcopy(self.g).eval().requires_grad_(False) if settings.ema_half_life else None
        )
        self.step_count = 0
        self.seconds = 0.0  # Training wall time over all runs (resumes add to it).

    def _g_param_groups(self) -> list[dict[str, Any]]:
        """G's trainable parameters in module order, the reference gates at their own rate.

        The gates start at zero and each one scales a whole channel, so at G's rate they open
        slowly; ``gate_lr_mult`` speeds them up. The groups keep the parameters' order, so an
        optimizer state saved by a run with other groups still restores.
        """
        named = [(n, p) for n, p in self.g.named_parameters() if p.requires_grad]
        groups = []
        for gate, chunk in itertools.groupby(named, key=lambda np_: REF_GATES in np_[0]):
            lr = self.s.lr_g * (self.s.gate_lr_mult if gate else 1.0)
            groups.append({"params": [p for _, p in chunk], "lr": lr})
        return groups

    def step(self, batch: dict[str, torch.Tensor]) -> tuple[dict[str, float], torch.Tensor]:
        """One G step then one D step; returns the loss values and the generated frames."""
        b = {k: v.to(self.dev) for k, v in batch.items()}
        n, t = b["target"].shape[:2]
        s = self.cfg.resolution
        fake = self.g(b["target"], b["reference"], b["mask"], b["mel"])  # (N, T, 3, S, S)
        flat_fake, flat_real = fake.reshape(n * t, 3, s, s), b["target"].reshape(n * t, 3, s, s)
        # --- G: L_g = L_adv + λ_r·L_rec + λ_s·L_sync.
        self.d.requires_grad_(False)
        fake_logits, fake_feats = losses.discriminator_features(self.d, flat_fake)
        l_adv = losses.g_adversarial(fake_logits)
        err = (flat_fake - flat_real).abs()
        mask = b["mask"].reshape(n * t, 1, s, s)
        l1 = err.mean()
        l1_mask = (err * mask).sum() / (mask.sum() * 3).clamp_min(1.0)
        if self.vgg is not None:
            l_perc = self.vgg(flat_fake, flat_real)
        else:
            with torch.no_grad():
                _, real_feats = losses.discriminator_features(self.d, flat_real)
            l_perc = losses.feature_matching(fake_feats, real_feats)
        l_rec = l1 + l1_mask + l_perc
        l_sync = (
            losses.generator_sync_loss(self.syncnet, fake, b["sync_mel"])
            if self.syncnet is not None
            else fake.new_zeros(())
        )
        l_lmk, l_gap = (
            landmark_loss(
                self.landmark_net, flat_fake, flat_real, mask, b["points"].reshape(n * t, -1, 2)
            )
            if self.landmark_net is not None
            else (fake.new_zeros(()), fake.new_zeros(()))
        )
        l_g = (
            losses.LAMBDA_ADV * l_adv
            + losses.LAMBDA_REC * l_rec
            + self.s.lambda_sync * l_sync
            + self.s.lambda_lmk * l_lmk
            + self.s.lambda_gap * l_gap
        )
        self.opt_g.zero_grad(set_to_none=True)
        l_g.backward()
        self.opt_g.step()
        self.update_ema()
        # --- D: logistic loss + lazy R1.
        l_d = discriminator_step(self.d, self.opt_d, flat_real, flat_fake, self.step_count)
        self.step_count += 1
        values = {
            "L_g": l_g,
            "L_adv": l_adv,
            "L1": l1,
            "L1_mask": l1_mask,
            "L_perc": l_perc,
            "L_sync": l_sync,
            "L_lmk": l_lmk,
            "L_gap": l_gap,
            "L_D": l_d,
        }
        return {k: float(v.detach()) for k, v in values.items()}, fake.detach().cpu()

    @torch.no_grad()
    def update_ema(self) -> None:
        """w_ema ← β·w_ema + (1 − β)·w with β = 0.5^(1 / half-life); buffers are copied."""
        if self.g_ema is None:
            return
        beta = 0.5 ** (1.0 / self.s.ema_half_life)
        for p_ema, p in zip(self.g_ema.parameters(), self.g.parameters(), strict=True):
            p_ema.lerp_(p, 1.0 - beta)
        for b_ema, b in zip(self.g_ema.buffers(), self.g.buffers(), strict=True):
            b_ema.copy_(b)

    @property
    def release(self) -> StyleSyncGenerator:
        """The generator that is written out and validated: the weight average when kept."""
        return self.g_ema if self.g_ema is not None else self.g

    def save_release(self, path: Path, provenance: dict[str, Any]) -> None:
        """The released generator in fp16 (loading copies it into the fp32 model)."""
        prov = {**provenance, "steps": self.step_count, "train_seconds": round(self.seconds, 1)}
        if self.g_ema is not None:
            prov["ema_half_life_steps"] = self.s.ema_half_life
        save_checkpoint(copy.deepcopy(self.release).cpu().half(), path, prov)

    def save(self, out_dir: Path, provenance: dict[str, Any]) -> None:
        """Generator (fp16, release format), discriminator and optimizer state for resume."""
        out_dir.mkdir(parents=True, exist_ok=True)
        prov = {**provenance, "steps": self.step_count, "train_seconds": round(self.seconds, 1)}
        self.save_release(out_dir / GENERATOR_FILE, provenance)
        save_module(self.d, out_dir / DISCRIMINATOR_FILE, "discriminator", self.cfg.to_dict(), prov)
        tensors = {**optimizer_tensors(self.opt_g, "g"), **optimizer_tensors(self.opt_d, "d")}
        tensors.update({f"g_fp32.{k}": v for k, v in self.g.state_dict().items()})
        if self.g_ema is not None:
            tensors.update({f"g_ema_fp32.{k}": v for k, v in self.g_ema.state_dict().items()})
        save_state(
            out_dir / STATE_FILE, tensors, {"step": self.step_count, "seconds": self.seconds}
        )

    def resume(self, out_dir: Path) -> None:
        """Load what :meth:`save` wrote (fp32 generator weights from the state file)."""
        load_checkpoint(out_dir / GENERATOR_FILE, expected_config=self.cfg)  # Verifies config.
        tensors, meta = load_state_file(out_dir / STATE_FILE)
        g_state = {k[len("g_fp32.") :]: v for k, v in tensors.items() if k.startswith("g_fp32.")}
        load_state(self.g, g_state, out_dir / STATE_FILE)
        if self.g_ema is not None:
            ema = {k[len("g_ema_fp32.") :]: v for k, v in tensors.items() if k.startswith("g_ema_")}
            if ema:
                load_state(self.g_ema, ema, out_dir / STATE_FILE)
            else:  # A run that had no average yet: start it at the current weights.
                self.g_ema.load_state_dict(self.g.state_dict())
                log.info(
                    "no weight average in %s: starting one at step %d", out_dir, int(meta["step"])
                )
        load_state(self.d, load_file(str(out_dir / DISCRIMINATOR_FILE)), out_dir)
        restore_optimizer(self.opt_g, tensors, "g")
        restore_optimizer(self.opt_d, tensors, "d")
        self.step_count, self.seconds = int(meta["step"]), float(meta["seconds"])
        log.info("resumed at step %d (%.0f s trained)", self.step_count, self.seconds)


def train_generator(
    data_dir: Path,
    out_dir: Path,
    cfg: GeneratorConfig,
    settings: GenTrainSettings = GenTrainSettings(),
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
    out_dir = Path(out_dir)
    if min(settings.lambda_lmk, settings.lambda_gap, settings.lambda_sync) < 0:
        raise ConfigError("--lambda-lmk, --lambda-gap and --lambda-sync must not be negative")
    if settings.gate_lr_mult <= 0:
        raise ConfigError(f"--gate-lr-mult must be positive, not {settings.gate_lr_mult}")
    if settings.lambda_gap and not landmarks:
        raise ConfigError("--lambda-gap needs --landmarks (the regressor that measures the gap)")
    dev = select_device(device)
    clips = load_clips(data_dir, settings.split)
    val_clips: list = []
    if settings.val_speakers:
        if settings.val_every < 1:
            raise ConfigError(f"--val-every must be at least 1, not {settings.val_every}")
        clips, val_clips = split_speakers(clips, settings.val_speakers)
    net = resolve_syncnet(syncnet) if syncnet else None
    if net is None:
        log.warning("no --syncnet: training without L_sync (the mouth will not follow audio)")
    start = None
    if init and not (resume and (out_dir / STATE_FILE).is_file()):
        start, _ = resolve_generator(init)
        if replace(start.cfg, reference_gate=cfg.reference_gate) != cfg:
            raise ConfigError(f"--init {init}: a {start.cfg.name!r} generator, not {cfg.name!r}")
        if start.cfg.reference_gate and not cfg.reference_gate:
            raise ConfigError(f"--init {init} has reference gates: train it with --reference-gate")
    landmark_net = load_landmark_net(landmarks) if landmarks else None
    trainer = GeneratorTrainer(
        cfg, settings, dev, net, vgg19, init=start, landmark_net=landmark_net
    )
    if resume and (out_dir / STATE_FILE).is_file():
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
        "clips": len(clips),
        "frames": sum(len(c) for c in clips),
        "speakers": len({c.speaker for c in clips}),
        "val_speakers": sorted({c.speaker for c in val_clips}),
        "device": str(dev),
        "syncnet": syncnet,
        "init": init,
        "perceptual": "vgg19" if vgg19 else "discriminator-feature-matching",
        "landmarks": str(landmarks) if landmarks else None,
        "settings": {k: v for k, v in asdict(settings).items() if k != "augment"},
    }
    log_path = out_dir / "train_log.jsonl"
    out_dir.mkdir(parents=True, exist_ok=True)
    validation = _Validation(out_dir, Validator(val_clips)) if val_clips else None
    if validation and start is not None and validation.best is None:
        validation.run(trainer, provenance)  # The starting point is a candidate too.
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
    intervals = [(settings.val_every, lambda _: validation.run(trainer, provenance))]
    with open(log_path, "a") as logf:
        done = train_loop(
            step,
            max_steps=settings.max_steps,
            max_minutes=settings.max_minutes,
            start=first,
            log_every=settings.log_every,
            intervals=intervals if validation else (),
            save=lambda _: trainer.save(out_dir, provenance),
            save_every_s=settings.save_every_s,
            after_step=after_step,
        )
    if validation and validation.last_step != trainer.step_count:
        validation.run(trainer, provenance)
    run_s, run_steps = done.seconds, done.run_steps
    first_losses, last_losses = done.means(first=True), done.means()
    report = {
        "checkpoint": str(out_dir / GENERATOR_FILE),
        "steps": trainer.step_count,
        "run_steps": run_steps,
        "run_seconds": round(run_s, 1),
        "train_seconds_total": round(trainer.seconds, 1),
        "steps_per_s": round(run_steps / max(run_s, 1e-9), 4),
        "samples_per_s": round(run_steps * settings.batch_size / max(run_s, 1e-9), 4),
        "frames_per_s": round(run_steps * settings.batch_size * 5 / max(run_s, 1e-9), 3),
        "first_losses": first_losses,
        "last_losses": last_losses,
    }
    if validation:
        report["validation"] = validation.history
        report["best"] = validation.best
    (out_dir / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


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
