"""Per-actor personalization (StyleSync §3.3, with StyleLipSync's few-shot adaptation lessons).

From the general generator G (weights frozen as P), learn for one actor

    ΔW = MLP_Δw(f_f)                      a per-layer latent offset from the face feature
    ΔP                                    offsets of G's own parameters (E_a, E_face frozen)
    L_p = L_g + λ_p (Σ‖ΔW‖² + Σ‖ΔP‖²)     StyleSync §3.3
    L_g = L_adv + λ_r·L_rec + λ_s·L_sync  as in general training (lipdub.train.losses)

on 5-frame windows whose target and reference are the actor's own frames. The tail of each
footage clip is held out (never trained on) and measured before, during and after. When a
general prepared dataset is given, every batch is half actor, half general windows (1:1);
without one, lip-sync generality is kept by StyleLipSync's sync regulariser: the same actor
frames driven by random *other* audio of the footage must still be in sync for a frozen SyncNet,
L_reg = −log P_sync(G(I^m, I_ref, a_other), a_other).

ΔP is dense over a chosen scope (default ``high-res``: the synthesis layers l > ⌊L/2⌋ that Eq. 1
masks — they draw the mouth from w alone — their ToRGBs and every synthesis bias), or low-rank
(``rank`` r: ΔP = B·A per weight, B zero-initialised). The actor file holds ΔW's MLP and the
nonzero ΔP (:mod:`lipdub.model.personal`), a small fraction of the model.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.data import default_collate

from lipdub.data.clips import Clip
from lipdub.errors import ConfigError
from lipdub.model.discriminator import Discriminator
from lipdub.model.generator import StyleSyncGenerator
from lipdub.model.syncnet import SyncNet
from lipdub.train import loop, losses
from lipdub.train.checkpoints import optimizer_tensors, restore_optimizer
from lipdub.train.dataset import WINDOW, Augment, GeneratorWindows
from lipdub.train.generator_trainer import BETAS, discriminator_step
from lipdub.train.personal_defaults import LAMBDA_P, LEARNING_RATE
from lipdub.train.personal_eval import HELD_OUT_FRACTION, fmt_metrics, held_out_metrics
from lipdub.train.protocols import PersonalizeProgress, ProgressFn

log = logging.getLogger(__name__)

LAMBDA_SYNC_REG = 1.0  # Weight of StyleLipSync's sync regulariser (off-audio L_sync).
DEFAULT_STEPS = 1000  # Step budget when neither steps nor minutes is given.
EVAL_EVERY = 100  # Steps between held-out measurements.
SAVE_EVERY_S = 120.0  # Seconds between resumable state saves.
TUNE_SCOPES = ("high-res", "synthesis", "all")
#: Few-shot augmentation: mild, no flips (an actor's face is not symmetric).
PERSONAL_AUGMENT = Augment(0.05, 0.05, 0.05, 0.02, 2.0, 0.01, 0.0, 3.0)


@dataclass(frozen=True)
class PersonalSettings:
    """Knobs of one personalization run (stage options + run options, resolved once)."""

    weights: str | None = None  # General checkpoint: manifest name, path, None, "random-init".
    model: str = "full"  # Architecture of "random-init" ("full" | "lite").
    manifest: str | None = None  # Another weights manifest (tests); None = weights/.
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N".
    steps: int | None = None  # Total step budget over resumes (None: DEFAULT_STEPS or minutes).
    minutes: float | None = None  # Wall-time budget of this run's training loop.
    resume: bool = True  # Continue from the saved state when there is one.
    keep_worse: bool = False  # Adopt the result even when it does not beat the general model.
    batch_size: int = 2  # Actor windows per step (plus as many general ones when mixing).
    lr: float = LEARNING_RATE  # Adam learning rate.
    lambda_p: float = LAMBDA_P  # λ_p of L_p.
    tune: str = "high-res"  # ΔP scope: "high-res" | "synthesis" | "all" (mapping+MaLS+G).
    rank: int = 0  # Low-rank ΔP (0 = dense).
    held_out: float = HELD_OUT_FRACTION  # Fraction of each clip held out (its tail).
    eval_every: int = EVAL_EVERY  # Steps between held-out measurements.
    syncnet: str | None = None  # SyncNet name / path; None = the manifest's; "none" = off.
    discriminator: str | None = None  # D name / path; None = the manifest's; "none" = no L_adv.
    vgg19: str | None = None  # VGG19 weights for the paper's perceptual loss (else D-FM).
    general_data: str | None = None  # Prepared general dataset to mix 1:1 (else sync reg).
    general_split: str = "train"  # Split of the general dataset.
    sync_reg: float = LAMBDA_SYNC_REG  # Weight of the sync regulariser.
    seed: int = 0  # Sampling and low-rank initialisation seed.
    save_every_s: float = SAVE_EVERY_S  # Seconds between state saves.

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> PersonalSettings:
        """Build from a mapping; an unknown key or bad value is a one-line ConfigError."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ConfigError(f"unknown personalizer option(s) {unknown} (known: {sorted(names)})")
        s = cls(**{k: v for k, v in options.items() if v is not None or k in ("steps", "minutes")})
        if s.tune not in TUNE_SCOPES:
            raise ConfigError(f"tune must be one of {', '.join(TUNE_SCOPES)}, got {s.tune!r}")
        if s.rank < 0 or s.batch_size < 1 or not 0 < s.held_out < 1:
            raise ConfigError("rank must be >= 0, batch_size >= 1 and 0 < held_out < 1")
        if (s.steps is not None and s.steps < 0) or (s.minutes is not None and s.minutes <= 0):
            raise ConfigError("steps must be >= 0 and minutes > 0")
        return s

    @property
    def total_steps(self) -> int | None:
        """The step budget (None: only the time budget stops the run)."""
        if self.steps is not None:
            return self.steps
        return None if self.minutes is not None else DEFAULT_STEPS


class LowRankDelta(nn.Module):
    """Parametrization W ↦ W + B·A (rank r, B = 0 at first): a low-rank ΔP of one weight."""

    def __init__(self, shape: torch.Size, rank: int, generator: torch.Generator) -> None:
        super().__init__()
        fan_in = int(np.prod(shape[1:]))
        self.shape = shape
        self.a = nn.Parameter(torch.randn(rank, fan_in, generator=generator) / fan_in**0.5)
        self.b = nn.Parameter(torch.zeros(shape[0], rank))

    def delta(self) -> torch.Tensor:
        """ΔP = B·A in the weight's shape."""
        return (self.b @ self.a).view(self.shape)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.delta().to(weight.dtype)


def tuned_names(model: StyleSyncGenerator, scope: str) -> list[str]:
    """Names of the parameters ΔP may move (never E_face, E_a or ΔW's MLP)."""
    syn = model.synthesis
    first_masked = next(i for i in range(syn.num_layers) if syn.is_masked(i))
    hi_res = syn.layer_resolution(first_masked)

    def high_res(part: list[str], p: torch.Tensor) -> bool:
        if p.ndim == 1:
            return True  # Every bias and feature strength.
        if part[1] == "layers":
            return syn.is_masked(int(part[2]))  # Eq. 1's half: l > ⌊L/2⌋.
        return part[1] == "torgbs" and syn.resolutions[int(part[2])] >= hi_res  # Their ToRGBs.

    out = []
    for name, p in model.named_parameters():
        part = name.split(".")
        if part[0] in ("face_encoder", "audio_encoder", "delta_w"):
            continue  # E_face and E_a stay frozen; ΔW's MLP is trained as itself.
        if scope == "all" or (
            part[0] == "synthesis" and (scope == "synthesis" or high_res(part, p))
        ):
            out.append(name)
    return out


class DeltaCapture:
    """Forward hook on MLP_Δw keeping ΔW − ΔW_general of the last batch (for Σ‖ΔW‖²)."""

    def __init__(self, model: StyleSyncGenerator) -> None:
        if model.delta_w is None:
            raise ValueError("personalization trains MLP_Δw: build the generator with_delta_w")
        self.general = copy.deepcopy(model.delta_w).requires_grad_(False)
        self.value: torch.Tensor | None = None
        self.module = model.delta_w
        self.attach()

    def attach(self) -> None:
        """Start capturing."""
        self.handle = self.module.register_forward_hook(self._hook)

    def detach(self) -> None:
        """Stop capturing (the hook is removed)."""
        self.handle.remove()

    def _hook(self, module: nn.Module, args: tuple[torch.Tensor], out: torch.Tensor) -> None:
        self.value = out - self.general(args[0])  # Zero for a general model built as designed.


class PersonalTrainer:
    """ΔW's MLP and ΔP on a frozen general G; one :meth:`step` per batch."""

    def __init__(
        self,
        model: StyleSyncGenerator,
        settings: PersonalSettings,
        device: torch.device,
        syncnet: SyncNet | None = None,
        discriminator: Discriminator | None = None,
        vgg19: nn.Module | None = None,
    ) -> None:
        self.s, self.dev = settings, device
        self.model = model.to(device).train()
        self.base_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.requires_grad_(False)
        self.names = tuned_names(model, settings.tune)
        gen = torch.Generator().manual_seed(settings.seed)
        self.dense: dict[str, tuple[nn.Parameter, torch.Tensor]] = {}
        self.low_rank: dict[str, LowRankDelta] = {}  # By the name of the weight it moves.
        params = dict(model.named_parameters())
        for name in self.names:
            p = params[name]
            if settings.rank and p.ndim >= 2 and min(p.shape[0], p[0].numel()) > settings.rank:
                owner = model.get_submodule(name.rsplit(".", 1)[0])
                lr_delta = LowRankDelta(p.shape, settings.rank, gen).to(device)
                parametrize.register_parametrization(owner, name.rsplit(".", 1)[1], lr_delta)
                self.low_rank[name] = lr_delta
            else:
                p.requires_grad_(True)
                self.dense[name] = (p, p.detach().clone())
        self.capture = DeltaCapture(model)
        self.capture.module.requires_grad_(True)
        self.trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
        self.opt = torch.optim.Adam(self.trainable.values(), lr=settings.lr, betas=BETAS)
        self.syncnet = syncnet.to(device).eval().requires_grad_(False) if syncnet else None
        self.d = discriminator.to(device) if discriminator is not None else None
        self.opt_d = (
            torch.optim.Adam(self.d.parameters(), lr=settings.lr, betas=BETAS) if self.d else None
        )
        self.vgg = vgg19.to(device) if vgg19 is not None else None
        self.step_count = 0
        self.seconds = 0.0

    def delta_p_norm(self) -> torch.Tensor:
        """Σ‖ΔP‖² over every moved parameter (dense and low-rank)."""
        total = torch.zeros((), device=self.dev)
        for p, p0 in self.dense.values():
            total = total + (p - p0).square().sum()
        for lr_delta in self.low_rank.values():
            total = total + lr_delta.delta().square().sum()
        return total

    def step(
        self, batch: dict[str, torch.Tensor], off_mel: torch.Tensor | None = None
    ) -> dict[str, float]:
        """One step on L_p (+ the sync regulariser with ``off_mel``), then one D step."""
        b = {k: v.to(self.dev) for k, v in batch.items()}
        n, t, _, s, _ = b["target"].shape
        fake = self.model(b["target"], b["reference"], b["mask"], b["mel"])
        dw = self.capture.value
        flat_fake, flat_real = fake.reshape(n * t, 3, s, s), b["target"].reshape(n * t, 3, s, s)
        zero = fake.new_zeros(())
        l1 = (flat_fake - flat_real).abs().mean()
        l_adv, l_perc = zero, zero
        if self.d is not None:
            self.d.requires_grad_(False)
            fake_logits, fake_feats = losses.discriminator_features(self.d, flat_fake)
            l_adv = losses.g_adversarial(fake_logits)
            if self.vgg is None:
                with torch.no_grad():
                    _, real_feats = losses.discriminator_features(self.d, flat_real)
                l_perc = losses.feature_matching(fake_feats, real_feats)
        if self.vgg is not None:
            l_perc = self.vgg(flat_fake, flat_real)
        l_sync, l_reg = zero, zero
        if self.syncnet is not None:
            l_sync = losses.generator_sync_loss(self.syncnet, fake, b["sync_mel"])
            if off_mel is not None and self.s.sync_reg > 0:
                off_mel = off_mel.to(self.dev)
                off = self.model(b["target"], b["reference"], b["mask"], off_mel)
                l_reg = losses.generator_sync_loss(self.syncnet, off, off_mel[:, WINDOW // 2])
        l_g = (
            losses.LAMBDA_ADV * l_adv
            + losses.LAMBDA_REC * (l1 + l_perc)
            + losses.LAMBDA_SYNC * l_sync
        )
        # L_p = L_g + λ_p (Σ‖ΔW‖² + Σ‖ΔP‖²), ΔW summed over layers and dims, mean over samples.
        l_dw = dw.square().sum(dim=(1, 2)).mean() if dw is not None else zero
        l_dp = self.delta_p_norm()
        l_p = l_g + self.s.lambda_p * (l_dw + l_dp) + self.s.sync_reg * l_reg
        self.opt.zero_grad(set_to_none=True)
        l_p.backward()
        self.opt.step()
        l_d = zero
        if self.d is not None and self.opt_d is not None:
            l_d = discriminator_step(self.d, self.opt_d, flat_real, flat_fake, self.step_count)
        self.step_count += 1
        values = {"L_p": l_p, "L1": l1, "L_perc": l_perc, "L_adv": l_adv, "L_sync": l_sync}
        values |= {"L_reg": l_reg, "dW2": l_dw, "dP2": l_dp, "L_D": l_d}
        return {k: float(v.detach()) for k, v in values.items()}

    def low_rank_factors(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Weight name → (B, A) of every low-rank ΔP = B·A (CPU copies)."""
        return {n: (d.b.detach().cpu(), d.a.detach().cpu()) for n, d in self.low_rank.items()}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Everything a resume needs: trained tensors, optimizer state, D and its optimizer."""
        out = {f"p.{k}": v.detach() for k, v in self.trainable.items()}
        out |= optimizer_tensors(self.opt, "opt")
        if self.d is not None and self.opt_d is not None:
            out |= {f"d.{k}": v for k, v in self.d.state_dict().items()}
            out |= optimizer_tensors(self.opt_d, "opt_d")
        return out

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`state_tensors`."""
        with torch.no_grad():
            for k, p in self.trainable.items():
                p.copy_(tensors[f"p.{k}"])
        restore_optimizer(self.opt, tensors, "opt")
        if (
            self.d is not None
            and self.opt_d is not None
            and any(k.startswith("d.") for k in tensors)
        ):
            self.d.load_state_dict({k[2:]: v for k, v in tensors.items() if k.startswith("d.")})
            restore_optimizer(self.opt_d, tensors, "opt_d")

    def baked(self) -> StyleSyncGenerator:
        """A CPU copy with the low-rank ΔP folded into plain weights (what gets saved)."""
        self.capture.detach()  # The hook stays with the trainer, not in the copy.
        try:
            model = copy.deepcopy(self.model).cpu().eval()
        finally:
            self.capture.attach()
        for module in list(model.modules()):
            if parametrize.is_parametrized(module):
                assert isinstance(module.parametrizations, nn.ModuleDict)  # As torch sets it.
                for name in list(module.parametrizations):
                    parametrize.remove_parametrizations(module, name, leave_parametrized=True)
        return model


def train_loop(
    trainer: PersonalTrainer,
    train: list[Clip],
    held: list[Clip],
    settings: PersonalSettings,
    general: list[Clip] | None = None,
    progress: ProgressFn | None = None,
    checkpoint: Any = None,
) -> dict[str, Any]:
    """Run the optimisation until a budget is spent; return the history record.

    Arguments:
        trainer: the trainer (possibly resumed: its ``step_count`` continues).
        train: the actor's training parts; ``held``: their held-out tails (same order).
        settings: the run's settings (budgets, batch size, evaluation interval).
        general: general clips to mix 1:1, or None for the sync regulariser.
        progress: called after every step.
        checkpoint: ``checkpoint(trainer)`` saves resumable state (every ``save_every_s``).
    """
    mel_cfg = trainer.model.cfg.mel
    actor_ds = GeneratorWindows(train, 10**9, PERSONAL_AUGMENT, settings.seed, mel_cfg)
    other_ds = GeneratorWindows(train, 10**9, PERSONAL_AUGMENT, settings.seed + 1, mel_cfg)
    general_ds = (
        GeneratorWindows(general, 10**9, Augment(), settings.seed + 2, mel_cfg) if general else None
    )
    pairs = list(zip(train, held, strict=True))
    total = settings.total_steps
    evals: list[dict[str, Any]] = []
    held_now: list[dict[str, float] | None] = [None]  # Measured after the step just taken.

    def measure(_: int = 0) -> None:
        m = held_out_metrics(trainer.model, pairs, actor_ds, trainer.dev)
        evals.append({"step": trainer.step_count, **m})
        log.info("step %d held-out %s", trainer.step_count, fmt_metrics(m))
        held_now[0] = m

    def step(k: int) -> dict[str, float]:
        held_now[0] = None
        bs, first = settings.batch_size, k * settings.batch_size
        samples = [actor_ds[first + i] for i in range(bs)]
        off_mel = None
        if general_ds is not None:
            samples += [general_ds[first + i] for i in range(bs)]  # 1:1 actor : general.
        elif trainer.syncnet is not None:
            off_mel = torch.stack([other_ds[first + i]["mel"] for i in range(bs)])
        return trainer.step(default_collate(samples), off_mel)

    def after_step(steps: int, losses_now: Mapping[str, float], seconds: float) -> None:
        trainer.seconds = seconds_before + seconds
        if progress is not None:
            progress(PersonalizeProgress(steps, total, losses_now, held_now[0], seconds))

    seconds_before = trainer.seconds
    done = loop.train_loop(
        step,
        max_steps=total,
        max_minutes=settings.minutes,
        start=trainer.step_count,
        log_every=settings.eval_every,
        intervals=[(settings.eval_every, measure)],
        save=None if checkpoint is None else (lambda _: checkpoint(trainer)),
        save_every_s=settings.save_every_s,
        after_step=after_step,
    )
    if not evals or evals[-1]["step"] != trainer.step_count:
        measure()
    last = done.history[-1] if done.history else {}
    return {"last_losses": last, "evals": evals, "final": evals[-1], "run_s": done.seconds}
