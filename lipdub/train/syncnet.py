"""``lipdub train syncnet``: the lip-sync expert, trained first and then frozen for L_sync.

Wav2Lip trains its expert with binary cross-entropy on single (in sync / off sync) pairs, which
on a few minutes of footage stayed at chance for lipdub's first SyncNet. Each sample here is 5
consecutive faces with the mel windows of *every* candidate audio shift of the same clip (0 and
3..9 frames either way, :class:`~lipdub.train.dataset.SyncCandidates`), and the loss is

    L = CE(softmax over the clip's own shifts, shift 0)                        (InfoNCE)
      + ½·BCE(P_sync, 1 | shift 0) + ½·BCE(P_sync, 0 | |shift| ≥ 5)

so every step contrasts 15 audio windows per face window, all from the same speaker at nearby
times (exactly the offset search of LSE-C), while the BCE term keeps P_sync = σ(s·cos + b)
calibrated for L_sync = −log P_sync. Other samples' audio is deliberately *not* used as negatives:
it can be told apart by voice and face identity alone, a shortcut that lowered the training loss
of a first run without improving sync on held-out speakers. Augmented (colour, scale, rotation,
flips, audio gain). At the end it reports, on the held-out split:

- accuracy: P_sync > 0.5 on a fixed balanced set of in-sync / off-sync pairs;
- ranking accuracy: on fixed held-out windows, the fraction of (in sync, ≥ 5 frames off) pairs of
  the *same* window whose in-sync audio scores higher (chance 0.5; no threshold involved);
- offset-detection rate: with the audio of each held-out clip shifted by a known number of frames
  s ∈ :data:`KNOWN_SHIFTS`, the fraction of (clip, s) where the ±15-frame search finds s (within
  ±1 frame) relative to the offset it finds at s = 0 (the clip's own offset is unknown).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from lipdub.data.clips import Clip, load_clips
from lipdub.eval.sync_scoring import SyncNetScorer, av_sync, syncnet_input
from lipdub.model.config import SyncNetConfig
from lipdub.model.engine import select_device
from lipdub.model.mel import MelFrontend
from lipdub.model.syncnet import SyncNet
from lipdub.model.syncnet_file import syncnet_config_dict
from lipdub.train.checkpoints import SYNCNET_LITE, save_module
from lipdub.train.dataset import (
    MIN_NEG_SHIFT,
    NO_AUGMENT,
    Augment,
    SyncCandidates,
    SyncWindows,
    candidate_shifts,
)
from lipdub.train.loop import optimizer_step, train_loop

log = logging.getLogger(__name__)

LEARNING_RATE = 1e-3  # Adam; BatchNorm towers train well at this rate (Wav2Lip: 1e-4).
HELD_OUT_PAIRS = 256  # Size of the fixed held-out pair set.
KNOWN_SHIFTS = (-6, -3, 3, 6)  # Audio shifts (frames) for the offset-detection rate.
DETECT_TOLERANCE = 1  # Frames of slack in the offset-detection rate.
EVAL_FRAMES = 150  # Frames per held-out clip used for the offset-detection rate.


@dataclass(frozen=True)
class SyncTrainSettings:
    """Knobs of a SyncNet run."""

    batch_size: int = 32  # Pairs per step.
    lr: float = LEARNING_RATE  # Adam learning rate (a short CPU budget wants a larger one).
    max_steps: int = 100_000  # Step budget (the time budget usually stops it first).
    max_minutes: float | None = None  # Wall-time budget for the training loop.
    log_every: int = 20  # Steps between log lines.
    save_every_s: float = 120.0  # Seconds between checkpoints.
    seed: int = 0  # Sampling and initialisation seed.
    augment: Augment = field(default_factory=Augment)  # Augmentation ranges.


def shift_audio(audio: np.ndarray, frames: int, fps: Any, rate: int = 16000) -> np.ndarray:
    """Delay (``frames`` > 0: silence first) or advance the audio by whole video frames."""
    n = round(frames / fps * rate)
    if n >= 0:
        return np.concatenate([np.zeros(n, audio.dtype), audio])
    return audio[-n:]


@torch.no_grad()
def held_out_accuracy(
    net: SyncNet, clips: list[Clip], device: torch.device, seed: int = 1
) -> float:
    """Accuracy of P_sync > 0.5 on :data:`HELD_OUT_PAIRS` fixed balanced pairs."""
    ds = SyncWindows(clips, HELD_OUT_PAIRS, NO_AUGMENT, seed, net.cfg.mel)
    correct = 0
    net.eval()
    for faces, mel, label in DataLoader(ds, batch_size=64):
        p = net(syncnet_input(net, faces.to(device)), mel.to(device)).cpu()
        correct += int(((p > 0.5).float() == label).sum())
    return correct / len(ds)


@torch.no_grad()
def held_out_ranking(net: SyncNet, clips: list[Clip], device: torch.device, seed: int = 1) -> float:
    """Fraction of (in sync, ≥ 5 frames off) audio pairs of one window ranked right."""
    ds = SyncCandidates(clips, HELD_OUT_PAIRS, NO_AUGMENT, seed, net.cfg.mel)
    far = torch.from_numpy(np.abs(candidate_shifts()) >= MIN_NEG_SHIFT)
    right, total = 0, 0
    net.eval()
    for faces, mels, valid in DataLoader(ds, batch_size=32):
        logits = shift_logits(net, faces.to(device), mels.to(device)).cpu()
        use = valid & far
        right += int(((logits > logits[:, :1]) == 0)[use].sum())
        total += int(use.sum())
    return right / max(total, 1)


def offset_detection(
    net: SyncNet, clips: list[Clip], device: torch.device
) -> tuple[float, list[dict[str, Any]]]:
    """The offset-detection rate (see the module docstring) and the per-clip findings."""
    scorer, mel = SyncNetScorer(net, device), MelFrontend(net.cfg.mel)
    hits, total, rows = 0, 0, []
    for clip in clips:
        n = min(len(clip), EVAL_FRAMES)
        crops, frames = clip.crops[:n], clip.frames[:n]
        base = av_sync(scorer, crops, clip.audio, clip.fps, frames, mel)
        found = {}
        for s in KNOWN_SHIFTS:
            res = av_sync(
                scorer, crops, shift_audio(clip.audio, s, clip.fps), clip.fps, frames, mel
            )
            found[s] = res.offset
            hits += int(abs(res.offset - base.offset - s) <= DETECT_TOLERANCE)
            total += 1
        rows.append(
            {
                "clip": clip.clip_id,
                "offset": base.offset,
                "lse_d": round(base.lse_d, 4),
                "lse_c": round(base.lse_c, 4),
                "found_at_shift": found,
            }
        )
    return hits / max(total, 1), rows


def shift_logits(net: SyncNet, faces: torch.Tensor, mels: torch.Tensor) -> torch.Tensor:
    """(B, C) logits of each window's 5 faces against its C candidate mel windows."""
    b, c = mels.shape[:2]
    v = net.embed_visual(syncnet_input(net, faces))  # (B, D)
    a = net.embed_audio(mels.flatten(0, 1)).view(b, c, -1)  # (B, C, D)
    return net.logits(v[:, None], a)


def contrastive_sync_loss(
    net: SyncNet,
    faces: torch.Tensor,
    mels: torch.Tensor,
    valid: torch.Tensor,
    far: torch.Tensor,
) -> torch.Tensor:
    """InfoNCE over the clip's candidate shifts plus calibrating BCE (see the module docstring).

    Arguments:
        net: the SyncNet being trained.
        faces: (B, 5, 3, S, S) aligned crops in [-1, 1].
        mels: (B, C, 1, n_mels, W) mel windows of the C candidate shifts (index 0 in sync).
        valid: (B, C) bool, False for shifts outside the clip.
        far: (C,) bool, the shifts far enough (≥ 5 frames) to be BCE negatives.
    """
    own = shift_logits(net, faces, mels).masked_fill(~valid, float("-inf"))  # (B, C)
    nce = F.cross_entropy(own, torch.zeros(len(own), dtype=torch.long, device=own.device))
    pos = F.binary_cross_entropy_with_logits(own[:, 0], torch.ones_like(own[:, 0]))
    neg_mask = valid & far
    neg_logits = own[neg_mask]
    neg = F.binary_cross_entropy_with_logits(neg_logits, torch.zeros_like(neg_logits))
    return nce + 0.5 * (pos + neg)


def train_syncnet(
    data_dir: Path,
    out_dir: Path,
    settings: SyncTrainSettings = SyncTrainSettings(),
    device: str = "auto",
    cfg: SyncNetConfig = SYNCNET_LITE,
    train_split: str = "train",
    test_split: str | None = "test",
    init: SyncNet | None = None,
) -> dict[str, Any]:
    """Train a SyncNet on ``train_split``, save ``out_dir/syncnet.safetensors``, report on test.

    ``init`` continues from an earlier SyncNet's weights (its config replaces ``cfg``); the
    optimizer starts fresh and the steps and time already spent are added to the provenance.

    Returns:
        The report (also written to ``out_dir/syncnet_report.json``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = select_device(device)
    torch.manual_seed(settings.seed)
    clips = load_clips(data_dir, train_split)
    net, earlier = _start(init, cfg)
    cfg = net.cfg
    net.to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    ds = SyncCandidates(
        clips, settings.max_steps * settings.batch_size, settings.augment, settings.seed, cfg.mel
    )
    loader = DataLoader(ds, batch_size=settings.batch_size)
    far = torch.from_numpy(np.abs(candidate_shifts()) >= MIN_NEG_SHIFT).to(dev)
    path = out_dir / "syncnet.safetensors"
    provenance = {
        "data": str(data_dir),
        "split": train_split,
        "clips": len(clips),
        "frames": sum(len(c) for c in clips),
        "speakers": len({c.speaker for c in clips}),
    }
    batches = iter(loader)

    def step(_: int) -> dict[str, float]:
        faces, mels, valid = next(batches)
        net.train()
        loss = contrastive_sync_loss(net, faces.to(dev), mels.to(dev), valid.to(dev), far)
        return {"loss": optimizer_step(loss, opt)}

    def save(steps: int) -> None:
        save_module(net, path, "syncnet", syncnet_config_dict(cfg), {**provenance, "steps": steps})

    done = train_loop(
        step,
        max_steps=settings.max_steps,
        max_minutes=settings.max_minutes,
        log_every=settings.log_every,
        save=save,
        save_every_s=settings.save_every_s,
    )
    steps, train_s = done.steps, done.seconds
    provenance.update(
        steps=steps + int(earlier.get("steps", 0)),
        seconds=round(train_s + float(earlier.get("seconds", 0.0)), 1),
        device=str(dev),
        batch_size=settings.batch_size,
        lr=settings.lr,
    )
    save_module(net, path, "syncnet", syncnet_config_dict(cfg), provenance)
    report: dict[str, Any] = {
        "checkpoint": str(path),
        "steps": steps,
        "train_seconds": round(train_s, 1),
        "steps_per_s": round(steps / max(train_s, 1e-9), 3),
        "samples_per_s": round(steps * settings.batch_size / max(train_s, 1e-9), 2),
        "first_loss": done.mean("loss", first=True, n=20),
        "last_loss": done.mean("loss", n=20),
    }
    test = load_clips(data_dir, test_split) if test_split else []  # Loaded late: may be new.
    if test:
        report.update(_held_out(net, test, dev))
    (out_dir / "syncnet_report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def _start(init: SyncNet | None, cfg: SyncNetConfig) -> tuple[SyncNet, dict[str, Any]]:
    """A new SyncNet of ``cfg``, or a copy of ``init`` (its config), with ``init``'s provenance
    (steps and time already spent)."""
    if init is None:
        return SyncNet(cfg), {}
    net = SyncNet(init.cfg)
    net.load_state_dict(init.state_dict())
    return net, dict(getattr(init, "provenance", {}))


def _held_out(net: SyncNet, test: list[Any], dev: torch.device) -> dict[str, Any]:
    """Accuracy, ranking and offset detection on the held-out clips."""
    net.eval()
    report: dict[str, Any] = {
        "held_out_accuracy": held_out_accuracy(net, test, dev),
        "held_out_ranking": held_out_ranking(net, test, dev),
    }
    rate, rows = offset_detection(net, test, dev)
    report.update(offset_detection_rate=rate, offset_detection=rows)
    log.info(
        "held-out accuracy %.3f, ranking %.3f, offset-detection rate %.3f",
        report["held_out_accuracy"],
        report["held_out_ranking"],
        rate,
    )
    return report
