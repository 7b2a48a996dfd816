"""Driver targets (issue 25): does the shape target follow a real mouth, without rendering?

Each clip of the `test` split of ../shared/data/clips.tsv is driven by its *own* speech: the
driver's target for every tracked frame (first ≤ --max-frames) is turned back into a mouth shape
and its inner-lip gap and mouth width are correlated (Pearson r, speech frames only) with the
real ones, measured by the default landmarker on the same frames. Two-fold: the actor's basis and
class means come from one half of the track, the targets are for the other half, then swapped,
so no frame's own shape is in the table that drives it. The selection's costs and the warp are
not involved: this isolates the target, at a fraction of bench/visemes.py's cost.

Drivers: ``viseme-table`` (the default), its ablations (no smoothing, no anticipation), and the
research-only ``mouth-driver-v1``; "loudness" is r of the gap with the speech's loudness alone.

Writes a dated subsection under `## driver targets` in bench/results.md.

    OMP_NUM_THREADS=1 python bench/driver_targets.py [--clips aoc-1,vox_00098-1] [--max-frames 250]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import logging
import math
import os
import resource
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from render import DATA, RESULTS, device_name, write_section  # bench/render.py

from lipdub.analysis.mouth_class import MouthScale, mouth_classes, mouth_geometry
from lipdub.analysis.mouth_shape import mouth_shape
from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.exemplar.target import ActorMouths, LearnedDriver, ShapeDriver, VisemeTableDriver
from lipdub.media.audio import load_audio, loudness_per_frame, to_model_audio
from lipdub.media.read import probe
from lipdub.model.driver import load_driver
from lipdub.phonetics.recognizer import default_recognizer
from lipdub.phonetics.track import viseme_track

log = logging.getLogger("bench.driver_targets")

#: Frames at least this loud (dBFS) count as speech.
SPEECH_DB = -35.0
CACHE = Path(__file__).resolve().parent / "out" / "driver_targets" / "cache"


def clips(wanted: list[str]) -> list[tuple[str, Path, Path]]:
    """(key, video, its own speech) of the test clips."""
    with open(DATA / "clips.tsv", newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["split"] == "test"]
    out, seen = [], {}
    for r in rows:
        seen[r["speaker"]] = seen.get(r["speaker"], 0) + 1
        key = f"{r['speaker']}-{seen[r['speaker']]}"
        own = DATA / (r["file"] if r["has_audio"] == "yes" else r["audio_file"])
        out.append((key, DATA / r["file"], own))
    return [c for c in out if not wanted or c[0] in wanted]


def drivers() -> dict[str, ShapeDriver]:
    table = VisemeTableDriver()
    return {
        "viseme-table": table,
        "no smoothing": VisemeTableDriver(replace(table.cfg, smooth_frames=0.0)),
        "no anticipation": VisemeTableDriver(replace(table.cfg, anticipation_s=0.0)),
        "mouth-driver-v1": LearnedDriver(load_driver("mouth-driver-v1")),
    }


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else math.nan


def measure(video: Path, own: Path, max_frames: int) -> dict[str, tuple[float, float]]:
    """Driver → (r gap, r width) on one clip; "loudness" → (r gap, nan)."""
    info = probe(video)
    n = min(max_frames, info.frame_count)
    analysis = analyze_shot(video, 0, n, cache_dir=CACHE)
    track = max(analysis.tracks, key=lambda t: len(t.frames))
    frames = np.asarray(track.frames)
    audio = to_model_audio(load_audio(own))
    visemes = viseme_track(audio, info.fps, n, default_recognizer())
    loud = loudness_per_frame(audio, n, info.fps)[frames]
    speech = loud >= SPEECH_DB
    shapes = mouth_shape(track.landmarks)
    real = mouth_geometry(shapes)
    classes = mouth_classes(real, MouthScale.of(real))
    half = len(frames) // 2
    folds = ((slice(half, None), slice(0, half)), (slice(0, half), slice(half, None)))
    out: dict[str, tuple[float, float]] = {}
    for name, driver in drivers().items():
        gap, width = np.zeros(len(frames)), np.zeros(len(frames))
        for fit, held in folds:
            basis = driver.basis(shapes[fit])
            actor = ActorMouths(basis.project(shapes[fit]), classes[fit])
            made = mouth_geometry(
                basis.unproject(driver.targets(actor, audio, info.fps, frames[held], visemes))
            )
            gap[held], width[held] = made.gap, made.width
        out[name] = (
            _r(gap[speech], real.gap[speech]),
            _r(width[speech], real.width[speech]),
        )
    out["loudness"] = (_r(loud[speech], real.gap[speech]), math.nan)
    return out


def _mean(xs: list[float]) -> float:
    finite = [x for x in xs if not math.isnan(x)]
    return float(np.mean(finite)) if finite else math.nan


def _cell(x: float) -> str:
    return "—" if math.isnan(x) else f"{x:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", default="", help="comma-separated clip keys (default: all)")
    parser.add_argument("--max-frames", type=int, default=250)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    rows = {}
    for key, video, own in clips([c for c in args.clips.split(",") if c]):
        log.info("measure %s", key)
        rows[key] = measure(video, own, args.max_frames)
    names = list(next(iter(rows.values())))
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    lines = [
        f"\n### {dt.date.today()} — {device_name('cpu')}\n",
        f"`{shlex.join(['python', 'bench/driver_targets.py', *sys.argv[1:]])}` "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; CPU time "
        f"{(cpu.ru_utime + cpu.ru_stime) / 60:.1f} min). {len(rows)} test clips, each driven by "
        f"its own speech, first ≤ {args.max_frames} frames, two-fold (table from one half, "
        "targets for the other). Pearson r of the target's inner-lip gap / mouth width with "
        "the real mouth's, on speech frames:\n",
        "| clip | " + " | ".join(f"`{n}`" for n in names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    for key, row in rows.items():
        cells = [f"{_cell(row[n][0])} / {_cell(row[n][1])}" for n in names]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    means = [" / ".join(_cell(_mean([rows[k][n][i] for k in rows])) for i in (0, 1)) for n in names]
    lines.append("| **mean** | " + " | ".join(means) + " |")
    text = "\n".join(lines) + "\n"
    write_section(args.results, "driver targets", text)
    print(text)


if __name__ == "__main__":
    main()
