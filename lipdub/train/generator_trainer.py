"""One optimisation step of the StyleSync generator against its discriminator (the losses of
:mod:`lipdub.train.backbone`), the weight average, and the state that ``--resume`` reloads.
Personalization reuses the discriminator step."""

from __future__ import annotations

import copy
import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from lipdub.model.checkpoint import (
    load_checkpoint,
    load_state,
    save_checkpoint,
)
from lipdub.model.config import GeneratorConfig
from lipdub.model.discriminator import Discriminator
from lipdub.model.generator import REF_GATES, StyleSyncGenerator
from lipdub.model.syncnet import SyncNet
from lipdub.train import losses
from lipdub.train.checkpoints import (
    load_state_file,
    optimizer_tensors,
    restore_optimizer,
    save_module,
    save_state,
)
from lipdub.train.dataset import NEAR_REF_PROB, Augment
from lipdub.train.landmarks import MouthLandmarkNet, landmark_loss

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
    d: Discriminator,
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


class GeneratorTrainer:
    """Holds G, D, their optimizers and the losses; one :meth:`step` per batch."""

    def __init__(
        self,
        cfg: GeneratorConfig,
        settings: GenTrainSettings,
        device: torch.device,
        syncnet: SyncNet | None = None,
        vgg19: Path | None = None,
        init: StyleSyncGenerator | None = None,
        landmark_net: MouthLandmarkNet | None = None,
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
            if self.g.delta_w.fc1.bias is not None:
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
