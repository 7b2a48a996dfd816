"""``lipdub train syncnet``: the lip-sync expert, trained first and then frozen for L_sync.

Wav2Lip's recipe: batches of (5 consecutive lower faces, one mel window) pairs, half in sync and
half off sync by at least :data:`lipdub.train.dataset.MIN_NEG_SHIFT` frames; P_sync = cos(v, a)
of the non-negative unit embeddings; binary cross-entropy on P_sync; Adam at 1e-4. Augmented
(colour, scale, rotation, flips, audio gain). At the end it reports, on the held-out split:

- accuracy: P_sync > 0.5 on a fixed balanced set of in-sync / off-sync pairs;
- offset-detection rate: with the audio of each held-out clip shifted by a known number of frames
  s ∈ :data:`KNOWN_SHIFTS`, the fraction of (clip, s) where the ±15-frame search finds s (within
  ±1 frame) relative to the offset it finds at s = 0 (the clip's own offset is unknown).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from lipdub.eval.metrics import SyncNetScorer, av_sync, syncnet_input
from lipdub.model.config import SyncNetConfig
from lipdub.model.engine import select_device
from lipdub.model.mel import MelFrontend
from lipdub.model.syncnet import SyncNet, sync_loss
from lipdub.train.checkpoints import SYNCNET_LITE, save_module, syncnet_config_dict
from lipdub.train.dataset import NO_AUGMENT, Augment, Clip, SyncWindows, load_clips

log = logging.getLogger(__name__)

LEARNING_RATE = 1e-4  # Wav2Lip's SyncNet learning rate (its runs take ~10⁵ steps).
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


def train_syncnet(
    data_dir: Path,
    out_dir: Path,
    settings: SyncTrainSettings = SyncTrainSettings(),
    device: str = "auto",
    cfg: SyncNetConfig = SYNCNET_LITE,
    train_split: str = "train",
    test_split: str | None = "test",
) -> dict[str, Any]:
    """Train a SyncNet on ``train_split``, save ``out_dir/syncnet.safetensors``, report on test.

    Returns:
        The report (also written to ``out_dir/syncnet_report.json``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = select_device(device)
    torch.manual_seed(settings.seed)
    clips = load_clips(data_dir, train_split)
    net = SyncNet(cfg).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=settings.lr)
    ds = SyncWindows(
        clips, settings.max_steps * settings.batch_size, settings.augment, settings.seed, cfg.mel
    )
    loader = DataLoader(ds, batch_size=settings.batch_size)
    path = out_dir / "syncnet.safetensors"
    provenance = {
        "data": str(data_dir),
        "split": train_split,
        "clips": len(clips),
        "frames": sum(len(c) for c in clips),
        "speakers": len({c.speaker for c in clips}),
    }
    t0 = time.monotonic()
    last_save, losses, step = t0, [], 0
    for step, (faces, mel, label) in enumerate(loader, start=1):
        net.train()
        p = net(syncnet_input(net, faces.to(dev)), mel.to(dev))
        loss = sync_loss(p, label.to(dev))  # BCE on P_sync = cos(v, a)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        elapsed = time.monotonic() - t0
        if step % settings.log_every == 0:
            log.info(
                "step %d loss %.4f (%.2f steps/s)",
                step,
                np.mean(losses[-settings.log_every :]),
                step / elapsed,
            )
        if time.monotonic() - last_save > settings.save_every_s:
            save_module(
                net, path, "syncnet", syncnet_config_dict(cfg), {**provenance, "steps": step}
            )
            last_save = time.monotonic()
        if settings.max_minutes is not None and elapsed > settings.max_minutes * 60:
            break
        if step >= settings.max_steps:
            break
    train_s = time.monotonic() - t0
    provenance.update(
        steps=step,
        seconds=round(train_s, 1),
        device=str(dev),
        batch_size=settings.batch_size,
        lr=settings.lr,
    )
    save_module(net, path, "syncnet", syncnet_config_dict(cfg), provenance)
    report: dict[str, Any] = {
        "checkpoint": str(path),
        "steps": step,
        "train_seconds": round(train_s, 1),
        "steps_per_s": round(step / max(train_s, 1e-9), 3),
        "samples_per_s": round(step * settings.batch_size / max(train_s, 1e-9), 2),
        "first_loss": float(np.mean(losses[:20])) if losses else None,
        "last_loss": float(np.mean(losses[-20:])) if losses else None,
    }
    test = load_clips(data_dir, test_split) if test_split else []  # Loaded late: may be new.
    if test:
        net.eval()
        report["held_out_accuracy"] = held_out_accuracy(net, test, dev)
        rate, rows = offset_detection(net, test, dev)
        report["offset_detection_rate"] = rate
        report["offset_detection"] = rows
        log.info(
            "held-out accuracy %.3f, offset-detection rate %.3f", report["held_out_accuracy"], rate
        )
    (out_dir / "syncnet_report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report
