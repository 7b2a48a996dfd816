"""Personalization benchmark: the general model vs the same model personalized on the speaker.

For each case (a test-split speaker of ../shared/data with two clips), the generator is
personalized on one clip (its tail held out) and measured on the *other* clip, which it never
saw, with :func:`lipdub.eval.evaluate.evaluate_clip`: PSNR, SSIM, LMD and CSIM of self-driven
reconstruction, LSE-C of cross-driven dubbing (an English speech file from audio.tsv), for the
general model and the personalized one. It records the wall time per minute of footage and
replaces the "## personalization" section of bench/results.md.

    python bench/personalize.py --weights lite-v3 --syncnet syncnet-lite-v2 \
        [--discriminator RUN/discriminator.safetensors] [--steps 300 | --minutes 10] \
        [--prepared /path/to/prepared/lite] [--device cpu]

Clips missing from ``--prepared`` are prepared into it first (``lipdub data prepare``).
"""

from __future__ import annotations

import argparse
import copy
import csv
import datetime as dt
import json
import logging
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results.md"
SECTION = "## personalization"
#: (speaker, clips to personalize on, clip to measure on) — test-split speakers only.
CASES = (
    (
        "andrew_ng",
        ("styletalk__samples_source_video_video_andrew_clip_1",),
        "styletalk__samples_source_video_video_andrew_clip_2",
    ),
    (
        "aoc",
        ("SadTalker__examples_ref_video_WDA_AlexandriaOcasioCortez_000",),
        "video-retalking__examples_face_3",
    ),
)
CROSS_LANGUAGE = "en"  # Cross-driven audio: the first speech file of this language.
SELF = ("PSNR", "SSIM", "LMD", "CSIM")

log = logging.getLogger("bench.personalize")


def ensure_prepared(prepared: Path, clip_ids: set[str], size: int) -> None:
    """Prepare the clips of ``clip_ids`` that ``prepared`` lacks (from ../shared/data)."""
    from lipdub.data.prepare import prepare, read_clips_tsv

    missing = {c for c in clip_ids if not (prepared / c / "info.json").is_file()}
    if missing:
        specs = [s for s in read_clips_tsv(DATA / "clips.tsv") if s.clip_id in missing]
        prepare(specs, prepared, size=size)


def cross_audio() -> tuple[str, object]:
    """(name, 16 kHz mono) of the first :data:`CROSS_LANGUAGE` speech file in audio.tsv."""
    from lipdub.media.audio import load_audio, to_model_audio

    with open(DATA / "audio.tsv", newline="") as f:
        row = next(r for r in csv.DictReader(f, delimiter="\t") if r["language"] == CROSS_LANGUAGE)
    return row["file"], to_model_audio(load_audio(DATA / row["file"]))


def run_case(args: argparse.Namespace, case: tuple, ctx, syncnet, disc, dub) -> dict:
    """Measure the general model, personalize, measure again."""
    from lipdub.data.clips import load_clip
    from lipdub.eval.evaluate import evaluate_clip
    from lipdub.model.personal import save_personal
    from lipdub.train import personal_eval as E
    from lipdub.train import personalize as P

    speaker, footage_ids, measure_id = case
    general = ctx.model
    measure = load_clip(args.prepared / measure_id)
    before = evaluate_clip(ctx, measure, dub[1], args.max_frames)
    clips = [load_clip(args.prepared / c) for c in footage_ids]
    pairs = [E.split_held_out(c, E.HELD_OUT_FRACTION) for c in clips]
    settings = P.PersonalSettings(
        steps=args.steps, minutes=args.minutes, device=args.device, tune=args.tune, rank=args.rank
    )
    trainer = P.PersonalTrainer(
        copy.deepcopy(general), settings, ctx.device, syncnet, copy.deepcopy(disc)
    )
    windows = P.GeneratorWindows([p[0] for p in pairs], 1, P.PERSONAL_AUGMENT, 0, general.cfg.mel)
    held_before = E.held_out_metrics(trainer.model, pairs, windows, ctx.device)
    t0 = time.monotonic()
    history = P.train_loop(trainer, [p[0] for p in pairs], [p[1] for p in pairs], settings)
    wall = time.monotonic() - t0
    ctx.model = trainer.baked().to(ctx.device)
    after = evaluate_clip(ctx, measure, dub[1], args.max_frames)
    ctx.model = general
    seconds = sum(len(c) / float(c.fps) for c in clips)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "personal.safetensors"
        save_personal(trainer.baked(), trainer.base_state, path, speaker)
        file_mb = path.stat().st_size / 1e6
    return {
        "speaker": speaker,
        "footage": list(footage_ids),
        "measured_on": measure_id,
        "footage_s": round(seconds, 2),
        "steps": trainer.step_count,
        "wall_s": round(wall, 1),
        "s_per_min_footage": round(wall / (seconds / 60), 1),
        "held_out_before": held_before,
        "held_out_after": history["final"],
        "general": {
            **{k: before["self"]["model"][k] for k in SELF},
            "LSE-C cross": before["cross"]["model"]["LSE-C"],
        },
        "personal": {
            **{k: after["self"]["model"][k] for k in SELF},
            "LSE-C cross": after["cross"]["model"]["LSE-C"],
        },
        "actor_file_mb": round(file_mb, 2),
    }


def write_section(rows: list[dict], args: argparse.Namespace, device: str) -> None:
    """Replace the "## personalization" section of bench/results.md."""
    keys = (*SELF, "LSE-C cross")
    lines = [
        SECTION,
        "",
        f"{dt.date.today()}, `python bench/personalize.py {' '.join(sys.argv[1:])}`; device "
        f"{device}. General weights `{args.weights}`, SyncNet `{args.syncnet}`; ΔP scope "
        f"{args.tune}{f' rank {args.rank}' if args.rank else ''}. Personalized on one clip, "
        f"measured on another clip of the same speaker (first {args.max_frames} frames; "
        "LSE-C from lipdub's own SyncNet, not comparable to published values). Wall time: the "
        "optimisation loop (footage preparation is cached and not counted).",
        "",
        "| speaker | model | " + " | ".join(keys) + " | steps | wall s | s / min footage |",
        "|---" * (len(keys) + 5) + "|",
    ]
    for r in rows:
        for name in ("general", "personal"):
            cells = [f"{r[name][k]:.3f}" for k in keys]
            extra = (
                [str(r["steps"]), str(r["wall_s"]), str(r["s_per_min_footage"])]
                if name == "personal"
                else ["", "", ""]
            )
            lines.append(f"| {r['speaker']} | {name} | " + " | ".join(cells + extra) + " |")
    lines += ["", "```json", json.dumps(rows, indent=1), "```", ""]
    text = RESULTS.read_text() if RESULTS.is_file() else "# lipdub benchmarks\n"
    pattern = re.compile(rf"{re.escape(SECTION)}\n.*?(?=\n## |\Z)", re.S)
    new = "\n".join(lines)
    text = (
        pattern.sub(lambda _: new.rstrip("\n"), text)
        if pattern.search(text)
        else (text.rstrip("\n") + "\n\n" + new)
    )
    RESULTS.write_text(text.rstrip("\n") + "\n")


def main() -> None:
    """Parse arguments, run every case, write the section."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="lite-v3", help="General generator (name or path).")
    parser.add_argument("--syncnet", default="syncnet-lite-v2", help="SyncNet (name or path).")
    parser.add_argument("--discriminator", help="The general run's discriminator (path or name).")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--minutes", type=float)
    parser.add_argument("--tune", default="high-res")
    parser.add_argument("--rank", type=int, default=0)
    parser.add_argument("--max-frames", type=int, default=100)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--prepared", type=Path, default=Path.home() / ".cache/lipdub/prepared")
    parser.add_argument("--speaker", action="append", help="Only these cases (repeatable).")
    parser.add_argument("--no-write", action="store_true", help="Print, do not touch results.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not (DATA / "clips.tsv").is_file():
        sys.exit(f"{DATA} is absent: this benchmark needs the real media")

    import torch

    from lipdub.analysis.faces import DlibFaceDetector
    from lipdub.eval import sync_scoring
    from lipdub.eval.evaluate import EvalContext
    from lipdub.model.checkpoint import load_manifest
    from lipdub.model.engine import select_device
    from lipdub.model.mel import MelFrontend
    from lipdub.model.syncnet_file import resolve_syncnet
    from lipdub.plugins.generator_stylesync import build_model
    from lipdub.plugins.stylesync_personalizer import load_discriminator

    dev = select_device(args.device)
    general, _ = build_model({"weights": args.weights, "model": "lite"})
    general = general.float().to(dev)
    syncnet = resolve_syncnet(args.syncnet).float()
    disc = load_discriminator(args.discriminator or "none", general, load_manifest())
    cases = [c for c in CASES if not args.speaker or c[0] in args.speaker]
    ensure_prepared(args.prepared, {i for c in cases for i in (*c[1], c[2])}, general.resolution)
    ctx = EvalContext(
        general,
        sync_scoring.SyncNetScorer(copy.deepcopy(syncnet), dev),
        MelFrontend(syncnet.cfg.mel),
        DlibFaceDetector("hog"),
        dev,
    )
    dub = cross_audio()
    rows = [run_case(args, c, ctx, syncnet, disc, dub) for c in cases]
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    print(json.dumps(rows, indent=1))
    if not args.no_write:
        write_section(rows, args, f"{dev} ({name})")


if __name__ == "__main__":
    main()
