"""The ``stylesync-delta`` personalizer's work (the choice is offered by
:mod:`lipdub.plugins.personalizer_stylesync`): ΔW's MLP + ΔP on the actor's own footage.

The optimisation is :mod:`lipdub.train.personalize`; this module does the rest of
:class:`lipdub.train.protocols.Personalizer`'s contract: prepares the actor's footage (analysis,
aligned crops, masks and mels, cached under ``.lipdub/personal/<actor>/prepared`` by
:func:`lipdub.data.prepare.prepare_clip`), loads the general generator (and the SyncNet and
discriminator named in the options or in weights/manifest.toml), resumes a stopped run, writes
``actors/<name>/personal.safetensors`` (+ JSON, :func:`lipdub.model.personal.save_personal`) and
the card ``actors/<name>/CARD.md``.

Options (see :class:`lipdub.train.personalize.PersonalSettings` for all): ``weights``,
``model``, ``device``, ``steps``, ``minutes``, ``resume``, ``batch_size``, ``lr``,
``lambda_p``, ``tune``, ``rank``, ``held_out``, ``syncnet``, ``discriminator``, ``vgg19``,
``general_data``, ``general_split``, ``sync_reg``, ``seed``.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import logging
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from lipdub.config.project import PERSONAL_FILE, REJECTED_FILE, ActorConfig
from lipdub.data.clips import Clip, load_clip, load_clips
from lipdub.data.prepare import ClipSpec, prepare_clip
from lipdub.errors import ConfigError, MediaError, WeightsError
from lipdub.model.checkpoint import (
    config_path_for,
    load_manifest,
    load_state,
    verified_record,
)
from lipdub.model.discriminator import Discriminator
from lipdub.model.engine import select_device
from lipdub.model.generator import StyleSyncGenerator
from lipdub.model.personal import save_personal
from lipdub.model.syncnet_file import resolve_syncnet
from lipdub.plugins.generator_stylesync import build_model
from lipdub.train import personal_eval as E
from lipdub.train import personalize as P
from lipdub.train.checkpoints import load_state_file, save_state
from lipdub.train.protocols import PersonalizeProgress, ProgressFn

log = logging.getLogger(__name__)

CARD_FILE = "CARD.md"
REJECTED_CARD = "CARD.rejected.md"
WORK_DIR = ".lipdub/personal"  # Prepared footage and resumable state, per actor.
STATE_FILE = "state.safetensors"
OFF = "none"  # Option value that switches the SyncNet or the discriminator off.
#: Whether lipdub.model.personal can store low-rank ΔP as its factors (else B·A is stored dense).
LOW_RANK_FILES = "low_rank" in inspect.signature(save_personal).parameters


def prepare_footage(
    actor: ActorConfig, project_root: Path, size: int, progress: ProgressFn | None = None
) -> list[Clip]:
    """Prepare (or reuse the cached preparation of) every footage clip of ``actor``.

    Raises:
        ConfigError: the actor lists no footage, or no clip has a usable face track.
        MediaError: a clip cannot be read (one without audio is named with the fix).
    """
    if not actor.footage:
        raise ConfigError(f"actor {actor.name!r} has no footage in lipdub.toml to personalize on")
    out = project_root / WORK_DIR / actor.name / "prepared"
    clips = []
    for k, video in enumerate(actor.footage):
        wav = video.with_suffix(".wav")
        spec = ClipSpec(video, wav if wav.is_file() and wav != video else None, actor.name, "actor")
        if progress is not None:
            progress(PersonalizeProgress(k, len(actor.footage), phase="prepare"))
        try:
            info = prepare_clip(spec, out, size, cache_dir=project_root / ".lipdub" / "cache")
        except MediaError as exc:
            raise MediaError(
                f"{exc}; footage must carry the actor's own voice (a clip without an audio "
                f"stream needs {wav.name} beside it)"
            ) from None
        if info is None:
            log.warning("%s: no face track long enough; not used", video)
            continue
        clips.append(load_clip(out / spec.clip_id, size))
    if not clips:
        raise ConfigError(f"actor {actor.name!r}: no footage clip has a usable face track")
    return clips


def load_discriminator(spec: str | None, g: StyleSyncGenerator, manifest: Any) -> Any:
    """The general run's discriminator (path or manifest name; None = the manifest's, if any)."""
    if spec == OFF:
        return None
    if spec is None:
        entries = [e for e in manifest.entries.values() if e.kind == "discriminator"]
        digest = g.cfg.digest()
        entries = [e for e in entries if e.config_sha256 in (None, digest)]
        if not entries:
            return None
        path, want = entries[0].file, entries[0].sha256
    elif spec.endswith(".safetensors") or "/" in spec:
        path, want = Path(spec).expanduser(), None
    else:
        entry = manifest.entries.get(spec)
        if entry is None or entry.kind != "discriminator":
            raise WeightsError(f"{manifest.path}: no discriminator named {spec!r}")
        path, want = entry.file, entry.sha256
    record = verified_record(path, "discriminator", "discriminator", want)
    if record.get("config_sha256") != g.cfg.digest():
        raise WeightsError(f"{path}: made for another generator config than {g.cfg.name!r}")
    d = Discriminator(g.cfg)
    load_state(d, {k: v.float() for k, v in load_file(str(path)).items()}, path)
    return d


def load_syncnet(spec: str | None, manifest: Any) -> Any:
    """A frozen SyncNet (path or manifest name; None = the manifest's default, else its first)."""
    if spec == OFF:
        return None
    if spec is None and manifest.default_syncnet is not None:
        spec = manifest.default_syncnet
    if spec is None:
        names = sorted(n for n, e in manifest.entries.items() if e.kind == "syncnet")
        if not names:
            return None
        spec = names[0]
    return resolve_syncnet(spec, manifest.path).float()


class StyleSyncPersonalizer:
    """:class:`lipdub.train.protocols.Personalizer` for the StyleSync generator."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = dict(options)
        P.PersonalSettings.from_options(self.options)  # Fail early on a bad option.

    def personalize(
        self,
        actor: ActorConfig,
        project_root: Path,
        options: Mapping[str, Any],
        progress: ProgressFn | None = None,
    ) -> Path:
        """See :meth:`lipdub.train.protocols.Personalizer.personalize`."""
        s = P.PersonalSettings.from_options({**self.options, **dict(options)})
        root = Path(project_root)
        device = select_device(s.device)
        model, label = build_model(dataclasses.asdict(s))
        clips = prepare_footage(actor, root, model.resolution, progress)
        pairs = [E.split_held_out(c, s.held_out) for c in clips]
        train, held = [p[0] for p in pairs], [p[1] for p in pairs]
        manifest = load_manifest(s.manifest)
        syncnet = load_syncnet(s.syncnet, manifest)
        general = load_clips(Path(s.general_data), s.general_split) if s.general_data else None
        vgg = P.losses.VGG19Perceptual(Path(s.vgg19)) if s.vgg19 else None
        disc = load_discriminator(s.discriminator, model, manifest)
        trainer = P.PersonalTrainer(model, s, device, syncnet, disc, vgg)
        work = root / WORK_DIR / actor.name
        fingerprint = {
            "weights": label,
            "config_sha256": model.cfg.digest(),
            "footage": [c.clip_id for c in clips],
            "tune": s.tune,
            "rank": s.rank,
        }
        meta = self._resume(trainer, work / STATE_FILE, fingerprint, s.resume)
        if "baseline" not in meta:
            if progress is not None:
                progress(PersonalizeProgress(0, s.total_steps, phase="baseline"))
            meta["baseline"] = E.held_out_metrics(
                trainer.model, list(zip(train, held, strict=True)), _windows(train, model), device
            )
        log.info("%s: held-out before %s", actor.name, E.fmt_metrics(meta["baseline"]))

        def checkpoint(t: P.PersonalTrainer) -> None:
            work.mkdir(parents=True, exist_ok=True)
            state = {**meta, "step": t.step_count, "seconds": t.seconds}
            save_state(work / STATE_FILE, t.state_tensors(), state)

        history = P.train_loop(trainer, train, held, s, general, progress, checkpoint)
        adopt = s.keep_worse or E.improves(meta["baseline"], history["final"])
        path = root / (PERSONAL_FILE if adopt else REJECTED_FILE).format(name=actor.name)
        out_dir = path.parent
        out_dir.mkdir(parents=True, exist_ok=True)
        provenance = {
            "general": label,
            "footage": [_rel(f, root) for f in actor.footage],
            "steps": trainer.step_count,
            "seconds": round(trainer.seconds, 1),
            "device": str(device),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "held_out_before": meta["baseline"],
            "held_out_after": history["final"],
            "adopted": adopt,
        }
        tmp = out_dir / "personal.tmp.safetensors"
        extra = {}
        if trainer.low_rank and LOW_RANK_FILES:
            extra["low_rank"] = trainer.low_rank_factors()  # B and A, not B·A.
        elif trainer.low_rank:
            log.warning("this lipdub.model.personal stores ΔP densely: rank only regularises")
        save_personal(trainer.baked(), trainer.base_state, tmp, actor.name, provenance, **extra)
        os.replace(tmp, path)
        os.replace(config_path_for(tmp), config_path_for(path))
        card = out_dir / (CARD_FILE if adopt else REJECTED_CARD)
        write_card(card, actor, clips, held, s, trainer, label, meta, history, path, adopt)
        if adopt:  # A result kept aside earlier is superseded.
            rejected = root / REJECTED_FILE.format(name=actor.name)
            for stale in (rejected, config_path_for(rejected), out_dir / REJECTED_CARD):
                stale.unlink(missing_ok=True)
        else:
            log.warning(
                "%s: held-out %s after vs %s before: not better than the general model; kept "
                "aside as %s, not adopted",
                actor.name,
                E.fmt_metrics(history["final"]),
                E.fmt_metrics(meta["baseline"]),
                path,
            )
        if progress is not None:
            progress(
                PersonalizeProgress(
                    trainer.step_count,
                    s.total_steps,
                    history["last_losses"],
                    history["final"],
                    history["run_s"],
                    "done",
                )
            )
        return path

    @staticmethod
    def _resume(
        trainer: P.PersonalTrainer, state: Path, fingerprint: dict[str, Any], resume: bool
    ) -> dict[str, Any]:
        """Load a previous run's state when it matches; return the metadata to carry on."""
        if not (resume and state.is_file()):
            return {"fingerprint": fingerprint}
        tensors, meta = load_state_file(state)
        if meta.get("fingerprint") != fingerprint:
            log.warning("%s: made for other weights, footage or scope; starting again", state)
            return {"fingerprint": fingerprint}
        trainer.load_state_tensors(tensors)
        trainer.step_count, trainer.seconds = int(meta.pop("step")), float(meta.pop("seconds"))
        log.info("resumed at step %d (%.0f s trained)", trainer.step_count, trainer.seconds)
        return meta


def _rel(path: Path, root: Path) -> str:
    """``path`` relative to the project root when it lies inside it."""
    try:
        return str(Path(os.path.abspath(path)).relative_to(os.path.abspath(root)))
    except ValueError:
        return str(path)


def _windows(train: list[Clip], model: StyleSyncGenerator) -> P.GeneratorWindows:
    return P.GeneratorWindows(train, 1, P.PERSONAL_AUGMENT, 0, model.cfg.mel)


def write_card(
    path: Path,
    actor: ActorConfig,
    clips: list[Clip],
    held: list[Clip],
    s: P.PersonalSettings,
    trainer: P.PersonalTrainer,
    label: str,
    meta: dict[str, Any],
    history: dict[str, Any],
    personal: Path,
    adopted: bool = True,
) -> None:
    """Write ``actors/<name>/CARD.md``: footage, settings, steps, time, device, metrics (or
    ``CARD.rejected.md`` for a result that was kept aside, saying why)."""
    frames = sum(len(c) for c in clips)
    seconds = sum(len(c) / float(c.fps) for c in clips)
    n_model = sum(v.numel() * v.element_size() for v in trainer.base_state.values())
    before, after = meta["baseline"], history["final"]
    gpu = torch.cuda.get_device_name(trainer.dev) if trainer.dev.type == "cuda" else "-"
    lines = [
        f"# Personalization card: {actor.name}",
        "",
        f"- general model: {label}",
        f"- footage: {len(clips)} clip(s), {frames} frames, {seconds:.1f} s "
        f"({sum(len(h) for h in held)} held-out frames, never trained on)",
        *[f"  - `{_rel(f, path.parents[2])}`" for f in actor.footage],
        f"- steps: {trainer.step_count} (batch {s.batch_size}"
        f"{' + as many general windows' if s.general_data else ''}), "
        f"time {trainer.seconds:.0f} s ({trainer.seconds / max(seconds / 60, 1e-9):.0f} s "
        "per minute of footage)",
        f"- device: {trainer.dev} ({gpu}), {platform.node()}, torch {torch.__version__}",
        f"- ΔP scope: {s.tune}{f', rank {s.rank}' if s.rank else ' (dense)'}; λ_p {s.lambda_p}, "
        f"lr {s.lr}",
        f"- losses: L_adv {'on' if trainer.d is not None else 'off (no discriminator)'}, "
        f"perceptual {'VGG19' if s.vgg19 else 'D feature matching' if trainer.d else 'off'}, "
        f"L_sync {'on' if trainer.syncnet is not None else 'off (no SyncNet)'}, "
        + (
            f"mixed 1:1 with {s.general_data}"
            if s.general_data
            else f"sync regulariser ×{s.sync_reg}"
            if trainer.syncnet is not None
            else "no lip-sync regulariser"
        ),
        f"- file: `{personal.name}` {personal.stat().st_size / 1e6:.2f} MB vs the model's "
        f"{n_model / 1e6:.2f} MB of tensors",
        "",
        "| held-out | before | after |",
        "|---|---|---|",
        *[f"| {k} | {before[k]:.4f} | {after[k]:.4f} |" for k in before],
        "",
        "Held-out: the tail of each clip; the mouth is generated from its own audio and",
        "composited with the mask (L1_mouth: mean |Δ| inside the mask, 0–1 scale).",
        "",
    ]
    if not adopted:
        lines[1:1] = [
            "",
            "**Not adopted**: on the held-out frames it does not beat the general model (lower",
            "L1_mouth and higher PSNR are both needed), so renders do not use it. Train longer,",
            "add footage, or run `lipdub personalize --keep-worse` to adopt such a result.",
        ]
    path.write_text("\n".join(lines))
