"""``lipdub eval``: self-driven reconstruction and cross-driven dubbing on prepared test clips.

Per clip (``lipdub data prepare`` output), the first F = min(max_frames, T − gap − 1) frames are
evaluated and the reference frame is chosen (``engine.choose_reference``) among frames at least
:data:`REF_GAP` after them, so it always comes from another time. The generator runs over the F
frames (encode → MaLS over the whole window → synthesis), and its output is composited into the
target crop with the mask, M·I^g + (1 − M)·I, as the renderer pastes it. Rows:

- ``model``: driven by the clip's own audio (self-driven; the ground truth is the clip itself);
- ``model, audio zeroed``: the same with silent audio (the mouth can only come from the picture);
- ``copy reference``: M·I_ref + (1 − M)·I, a do-nothing baseline with a real but wrong mouth;
- ``real video``: the ground-truth crops themselves (sync anchor: LSE of real footage).

Self-driven: PSNR, SSIM, LMD, the opening's bias and correlation (``gap-bias``, ``gap-r``,
see :mod:`lipdub.eval.metrics`), LSE-D, LSE-C, AV offset, CSIM. Cross-driven (another speech
file, from the audio TSV): LSE-D, LSE-C, AV offset and CSIM (there is no ground truth for the
rest).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lipdub.analysis.faces import DlibFaceDetector
from lipdub.data.clips import Clip, load_clips, require_speakers
from lipdub.eval import metrics, sync_scoring
from lipdub.media.audio import load_audio, to_model_audio
from lipdub.model.checkpoint import audio_scale_for, resolve_generator
from lipdub.model.engine import choose_reference, select_device
from lipdub.model.generator import StyleSyncGenerator
from lipdub.model.mel import MelFrontend
from lipdub.model.syncnet import SyncNet

log = logging.getLogger(__name__)

REF_GAP = 10  # The reference frame is at least this many frames after the evaluated window.
CSIM_EVERY = 10  # Identity descriptors are taken on every this-many-th frame (dlib is slow).
BATCH = 8  # Frames per generator batch.
ROWS = ("model", "model, audio zeroed", "copy reference", "real video")
SELF_METRICS = ("PSNR", "SSIM", "LMD", "gap-bias", "gap-r", "LSE-D", "LSE-C", "offset", "CSIM")
CROSS_METRICS = ("LSE-D", "LSE-C", "offset", "CSIM")
FORMATS = {  # Table precision (default .3f).
    "PSNR": ".2f",
    "gap-bias": "+.2f",
    "gap-r": ".2f",
    "LSE-D": ".4f",
    "LSE-C": ".5f",
    "offset": ".1f",
}


@dataclass
class EvalContext:
    """What every clip's evaluation needs."""

    model: StyleSyncGenerator
    scorer: sync_scoring.SyncScorer
    sync_mel: MelFrontend
    detector: DlibFaceDetector
    device: torch.device
    audio_scale: float = 1.0  # s in the generator's w_0 + s·(w − w_0).


@torch.no_grad()
def generate(
    model: StyleSyncGenerator,
    crops: np.ndarray,
    masks: np.ndarray,
    reference: np.ndarray,
    mel: torch.Tensor,
    device: torch.device,
    audio_scale: float = 1.0,
) -> np.ndarray:
    """Run the generator over one window: (F, S, S, 3) uint8 out, MaLS over all F frames."""
    model = model.eval().to(device)

    def img(x: np.ndarray) -> torch.Tensor:
        return (
            torch.from_numpy(np.ascontiguousarray(x)).float().div(127.5).sub(1).permute(0, 3, 1, 2)
        )

    ref = img(reference[None]).to(device)
    ws, feats = [], []
    for a in range(0, len(crops), BATCH):
        b = min(len(crops), a + BATCH)
        m = torch.from_numpy(masks[a:b]).float()[:, None].to(device)
        w, f = model.encode(
            img(crops[a:b]).to(device),
            ref.expand(b - a, -1, -1, -1),
            m,
            mel[a:b].to(device),
            audio_scale,
        )
        ws.append(w)
        feats.append(f)
    smooth = model.mals(torch.cat(ws)[None])[0]  # MaLS over the whole window at once.
    out = []
    for k, a in enumerate(range(0, len(crops), BATCH)):
        b = min(len(crops), a + BATCH)
        m = torch.from_numpy(masks[a:b]).float()[:, None].to(device)
        x = model.synthesize(smooth[a:b], feats[k], m).clamp(-1, 1)
        out.append(((x + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(out)


def composite(gen: np.ndarray, target: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """M·I^g + (1 − M)·I in uint8 (what the renderer pastes into the frame)."""
    m = masks.astype(np.float32)[..., None]
    return np.round(m * gen + (1 - m) * target).astype(np.uint8)


def _fit_audio(audio: np.ndarray, samples: int) -> np.ndarray:
    if len(audio) >= samples:
        return audio[:samples]
    return np.concatenate([audio, np.zeros(samples - len(audio), np.float32)])


@dataclass(frozen=True)
class EvalWindow:
    """The evaluated span of one clip: its first F frames and a reference from another time."""

    frames: int  # F
    reference: int  # Index of the reference frame (≥ REF_GAP after the span where possible).
    target: np.ndarray  # (F, S, S, 3) uint8 real crops.
    masks: np.ndarray  # (F, S, S) float32 masks in [0, 1].
    audio_frames: np.ndarray  # (F,) audio time of each frame in frames (AV offset corrected).


def eval_window(clip: Clip, max_frames: int) -> EvalWindow:
    """The first F = min(max_frames, T − REF_GAP − 1) frames and a reference chosen after them.

    ``lipdub eval`` and validation during training both use this, so a validation number and a
    test number are measured the same way.
    """
    t = len(clip)
    f = max(min(max_frames, t - REF_GAP - 1), metrics.SYNC_WINDOW)
    lo = min(f + REF_GAP, t - 1)
    ref = lo + choose_reference(clip.crops[lo:], clip.masks[lo:].astype(np.float32) / 255)
    return EvalWindow(
        frames=f,
        reference=int(ref),
        target=clip.crops[:f],
        masks=clip.masks[:f].astype(np.float32) / 255.0,
        audio_frames=clip.frames[:f] + clip.offset,
    )


def render_window(
    model: StyleSyncGenerator,
    clip: Clip,
    window: EvalWindow,
    audio: np.ndarray,
    device: torch.device,
    audio_scale: float = 1.0,
) -> np.ndarray:
    """The model's composite over ``window`` driven by ``audio`` (16 kHz mono)."""
    mel = MelFrontend(model.cfg.mel).windows(audio, clip.fps, window.audio_frames, 16000)
    ref = clip.crops[window.reference]
    gen = generate(model, window.target, window.masks, ref, mel, device, audio_scale)
    return composite(gen, window.target, window.masks)


def copy_reference(clip: Clip, window: EvalWindow) -> np.ndarray:
    """The copy-the-reference baseline: M·I_ref + (1 − M)·I over ``window``."""
    refs = np.repeat(clip.crops[window.reference][None], window.frames, 0)
    return composite(refs, window.target, window.masks)


class _Rows:
    """Scores one output of a clip's window against the real video: the metrics of a row."""

    def __init__(self, ctx: EvalContext, clip: Clip, target: np.ndarray, frames: np.ndarray):
        self.ctx, self.clip, self.target, self.frames = ctx, clip, target, frames
        self.gt_lms = clip.landmarks[: len(target)]
        self.target_lms = metrics.crop_landmarks(ctx.detector, target, self.gt_lms)
        self.sub = np.arange(0, len(target), CSIM_EVERY)
        self.target_desc = metrics.crop_descriptors(
            ctx.detector, target[self.sub], self.target_lms[self.sub]
        )

    def sync(self, crops: np.ndarray, audio: np.ndarray) -> dict[str, float]:
        c = self.ctx
        r = sync_scoring.av_sync(c.scorer, crops, audio, self.clip.fps, self.frames, c.sync_mel)
        return {"LSE-D": r.lse_d, "LSE-C": r.lse_c, "offset": float(r.offset)}

    def cross(self, out: np.ndarray, audio: np.ndarray) -> dict[str, float]:
        """Sync with ``audio`` and identity: what a dub with no ground truth can be scored on."""
        lms = metrics.crop_landmarks(self.ctx.detector, out, self.gt_lms)
        desc = metrics.crop_descriptors(self.ctx.detector, out[self.sub], lms[self.sub])
        return {**self.sync(out, audio), "CSIM": metrics.csim(desc, self.target_desc)}

    def self_driven(self, out: np.ndarray, audio: np.ndarray) -> dict[str, float]:
        """Against the real frames as well: PSNR, SSIM, LMD and the opening's bias and r."""
        lms = metrics.crop_landmarks(self.ctx.detector, out, self.gt_lms)
        pairs = list(zip(out, self.target, strict=True))
        gap_bias, gap_r = metrics.opening(lms, self.target_lms)
        desc = metrics.crop_descriptors(self.ctx.detector, out[self.sub], lms[self.sub])
        return {
            "PSNR": float(np.mean([metrics.psnr(a, b) for a, b in pairs])),
            "SSIM": float(np.mean([metrics.ssim(a, b) for a, b in pairs])),
            "LMD": metrics.lmd(lms, self.target_lms),
            "gap-bias": gap_bias,
            "gap-r": gap_r,
            **self.sync(out, audio),
            "CSIM": metrics.csim(desc, self.target_desc),
        }


def evaluate_clip(
    ctx: EvalContext, clip: Clip, cross_audio: np.ndarray | None, max_frames: int
) -> dict[str, Any]:
    """Metrics of every row on one clip (see the module docstring)."""
    win = eval_window(clip, max_frames)
    own = clip.audio

    def run(audio: np.ndarray) -> np.ndarray:
        return render_window(ctx.model, clip, win, audio, ctx.device, ctx.audio_scale)

    outputs = {
        "model": run(own),
        "model, audio zeroed": run(np.zeros_like(own)),
        "copy reference": copy_reference(clip, win),
        "real video": win.target,
    }
    rows = _Rows(ctx, clip, win.target, win.audio_frames)
    result: dict[str, Any] = {
        "clip": clip.clip_id,
        "frames": win.frames,
        "reference": win.reference,
        "self": {name: rows.self_driven(out, own) for name, out in outputs.items()},
        "cross": {},
    }
    if cross_audio is not None:
        n_audio = math.ceil((int(win.audio_frames[-1]) + 2) / clip.fps * 16000)
        dub = _fit_audio(cross_audio, n_audio)
        cross_out = {**outputs, "model": run(dub)}  # The zeroed and copied rows: the same.
        result["cross"] = {name: rows.cross(out, dub) for name, out in cross_out.items()}
    return result


def read_dub_audio(audio_tsv: Path | None) -> list[tuple[str, np.ndarray]]:
    """(name, 16 kHz mono) of every file listed in an audio TSV (``file`` column)."""
    if audio_tsv is None:
        return []
    with open(audio_tsv, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [(r["file"], to_model_audio(load_audio(audio_tsv.parent / r["file"]))) for r in rows]


def _mean(rows: list[dict[str, float]], keys: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for k in keys:
        vals = [r[k] for r in rows if k in r]
        finite = [v for v in vals if np.isfinite(v)]
        # PSNR of identical images is +inf: the mean is over the finite ones, inf if none is.
        # NaN (gap-r of a mouth that never moves) is left out the same way; all NaN stays NaN.
        if finite:
            out[k] = float(np.mean(finite))
        else:
            out[k] = math.inf if any(v == math.inf for v in vals) else math.nan
    out["clips"] = len(rows)
    return out


def evaluate(
    data_dir: Path,
    split: str,
    weights: str | None,
    syncnet: SyncNet,
    audio_tsv: Path | None = None,
    max_frames: int = 100,
    device: str = "cpu",
    audio_scale: float | None = None,
    speakers: Sequence[str] = (),
) -> dict[str, Any]:
    """Evaluate a generator on every prepared clip of ``split``; per clip and mean.

    ``audio_scale`` None uses the checkpoint's own (its manifest entry, else 1). ``speakers``
    keeps only those speakers' clips (e.g. the validation speakers of a training run, which lie
    in the train split), so a setting can be chosen without looking at the test split.
    """
    dev = select_device(device)
    model, label = resolve_generator(weights)
    scale = audio_scale_for(weights) if audio_scale is None else audio_scale
    ctx = EvalContext(
        model.to(dev),
        sync_scoring.SyncNetScorer(syncnet, dev),
        MelFrontend(syncnet.cfg.mel),
        DlibFaceDetector("hog"),
        dev,
        scale,
    )
    dubs = read_dub_audio(audio_tsv)
    clips = load_clips(data_dir, split)
    if speakers:
        require_speakers(clips, speakers, "--speakers")
        wanted = set(speakers)
        clips = [c for c in clips if c.speaker in wanted]
    per_clip = []
    for i, clip in enumerate(clips):
        dub = dubs[i % len(dubs)] if dubs else None
        log.info("eval %s (dub %s)", clip.clip_id, dub[0] if dub else "none")
        res = evaluate_clip(ctx, clip, dub[1] if dub else None, max_frames)
        res["dub_audio"] = dub[0] if dub else None
        per_clip.append(res)
    mean = {
        "self": {r: _mean([c["self"][r] for c in per_clip], SELF_METRICS) for r in ROWS},
        "cross": {
            r: _mean([c["cross"][r] for c in per_clip if c["cross"]], CROSS_METRICS) for r in ROWS
        }
        if dubs
        else {},
    }
    return {
        "weights": label,
        "audio_scale": scale,
        "split": split,
        "speakers": sorted(speakers),
        "max_frames": max_frames,
        "mean": mean,
        "clips": per_clip,
    }


def format_table(result: dict[str, Any]) -> str:
    """Markdown tables (self-driven and cross-driven means) of :func:`evaluate`'s result."""
    lines = []
    if "weights" in result:
        lines += [f"`{result['weights']}`, audio scale {result.get('audio_scale', 1.0):g}", ""]
    for part, keys in (("self", SELF_METRICS), ("cross", CROSS_METRICS)):
        rows = result["mean"].get(part) or {}
        if not rows:
            continue
        title = "self-driven reconstruction" if part == "self" else "cross-driven dubbing"
        lines += [
            f"**{title}** (mean of {next(iter(rows.values()))['clips']} clips)",
            "",
            "| row | " + " | ".join(keys) + " |",
            "|---" * (len(keys) + 1) + "|",
        ]
        for name, vals in rows.items():
            cells = [f"{vals[k]:{FORMATS.get(k, '.3f')}}" for k in keys]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def write_results(result: dict[str, Any], out: Path) -> None:
    """JSON (inf → null) and a Markdown table beside it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def clean(x: Any) -> Any:
        if isinstance(x, float) and not math.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list):
            return [clean(v) for v in x]
        return x

    out.write_text(json.dumps(clean(result), indent=1) + "\n")
    out.with_suffix(".md").write_text(format_table(result) + "\n")
