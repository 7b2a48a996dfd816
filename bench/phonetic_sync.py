"""Phonetic sync benchmark (issue 25): does QC's clean sync measure find a known A/V offset?

QC's default sync measure (:mod:`lipdub.eval.phonetic_sync`) correlates the delivered mouth's
opening with the opening the dub's visemes ask for, over lags ±15 frames. Here the "delivered
mouth" is the real one: every clip of the ``--splits`` of ../shared/data/clips.tsv (first
``--frames`` frames; its longest face track; the default landmarker, the analysis QC's
landmarks come from), with the inner-lip gap per frame. Each clip is "dubbed" with:

- its own speech shifted by ``--shifts`` frames (positive: the audio late; silence fills the
  start, or the start is cut): the measure should find each shift, confidently;
- unrelated speech (the next clip's own speech, and a German line from audio/): no offset should
  be warned about;
- silence: no measure at all.

The viseme track is computed on the shifted audio by the bundled recognizer, as a render does.
A clip's own speech need not be in sync to the frame (separate WAVs may be ~0.1 s off; some
"likely own" clips may be further off), so a shift counts as found when the offset moved with
it: offset(shift) − offset(0) = shift ± 1 frame. The offset at shift 0 is reported too.
Writes a dated subsection under `## phonetic sync` in bench/results.md and the numbers as JSON
into bench/out/phonetic_sync/.

    OMP_NUM_THREADS=1 python bench/phonetic_sync.py [--splits test train] [--frames 250]
        [--shifts -6 -3 0 3 6]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import os
import resource
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from render import DATA, REPO, RESULTS, device_name, write_section  # bench/render.py

from lipdub.analysis.masks import mouth_opening
from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.errors import MediaError
from lipdub.eval.phonetic_sync import MAX_LAG, MIN_PAIRS, expected_opening, phonetic_sync
from lipdub.eval.qc import LOUD_DB
from lipdub.eval.qc_checks import (
    OFFSET_MIN_SPEECH,
    OFFSET_PEAK,
    PHONETIC_MIN_R,
    phonetic_offset_confident,
    phonetic_offset_warning,
)
from lipdub.media.audio import load_audio, loudness_per_frame, to_model_audio
from lipdub.media.read import probe
from lipdub.phonetics.recognizer import default_recognizer
from lipdub.phonetics.track import viseme_track

log = logging.getLogger("bench.phonetic_sync")

OUT = REPO / "bench" / "out" / "phonetic_sync"
CACHE = REPO / "bench" / "out" / "cache"
GERMAN = "dreamtalk__data_audio_German1.wav"  # An unrelated dub (audio/).
RATE = 16_000


@dataclass
class Clip:
    """One test clip: its measured mouth and its own speech at 16 kHz."""

    name: str
    split: str  # The clips.tsv split.
    own: str  # clips.tsv own_speech: "yes" or "likely".
    fps: Fraction
    opening: np.ndarray  # (T,) IOD, NaN where the track is absent.
    speech: np.ndarray  # 16 kHz mono, from the clip's first frame.


def load_clip(row: dict[str, str], frames: int) -> Clip:
    """Analyse the first ``frames`` frames of a clip; its longest track's opening per frame."""
    video = DATA / row["file"]
    fps = probe(video).fps
    n = min(frames, probe(video).frame_count)
    tracks = analyze_shot(video, 0, n, cache_dir=CACHE).tracks
    opening = np.full(n, np.nan)
    if tracks:
        track = max(tracks, key=len)
        for j, f in enumerate(track.frames):
            opening[int(f)] = mouth_opening(track.landmarks[j])
    audio = DATA / (row["audio_file"] or row["file"])
    speech = to_model_audio(load_audio(audio))
    name = Path(row["file"]).stem.split("__")[-1]
    return Clip(name, row["split"], row["own_speech"], fps, opening, speech)


def shifted(audio: np.ndarray, frames: int, fps: Fraction) -> np.ndarray:
    """``audio`` moved ``frames`` video frames later (earlier when negative)."""
    k = round(frames * RATE / float(fps))
    if k >= 0:
        return np.concatenate([np.zeros(k, np.float32), audio])
    return audio[-k:]


def measure(clip: Clip, audio: np.ndarray) -> dict[str, Any]:
    """QC's phonetic sync of ``clip``'s mouth against ``audio`` (as QC computes it)."""
    n = len(clip.opening)
    audio = audio[: round(n * RATE / float(clip.fps)) + RATE]
    visemes = viseme_track(audio, clip.fps, n, default_recognizer())
    loud = loudness_per_frame(audio, n, clip.fps)
    speech = int((loud[np.isfinite(clip.opening)] >= LOUD_DB).sum())
    res = phonetic_sync(clip.opening, expected_opening(visemes, loud), float(clip.fps))
    if res is None:
        return {"measured": False, "speech_frames": speech, "warned": False}
    peak, r_best = round(res.peak, 3), round(res.r_best, 3)
    warned = phonetic_offset_warning(res.offset, peak, r_best, speech) is not None
    return {
        "measured": True,
        "r0": round(res.r0, 3),
        "offset": res.offset,
        "r_best": round(res.r_best, 3),
        "peak": peak,
        "confident": phonetic_offset_confident(peak, r_best) and speech >= OFFSET_MIN_SPEECH,
        "pairs": res.pairs,
        "speech_frames": speech,
        "warned": warned,
    }


def run(frames: int, shifts: list[int], splits: list[str]) -> dict[str, Any]:
    """Every clip, every dub: the rows (and the clips left out, with why)."""
    with (DATA / "clips.tsv").open() as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["split"] in splits]
    clips, skipped = [], []
    for r in rows:
        try:
            clips.append(load_clip(r, frames))
        except MediaError as exc:  # A variable-rate clip: refused by the reader, as by render.
            skipped.append(f"{r['file']}: {str(exc).split(';')[0]}")
    german = to_model_audio(load_audio(DATA / "audio" / GERMAN))
    out: list[dict[str, Any]] = []
    for i, clip in enumerate(clips):
        other = clips[(i + 1) % len(clips)]
        tag = {"clip": clip.name, "split": clip.split, "own_speech": clip.own}
        for s in shifts:
            out.append({**tag, "dub": f"own {s:+d}", "shift": s,
                        **measure(clip, shifted(clip.speech, s, clip.fps))})  # fmt: skip
        for name, audio in ((f"other ({other.name})", other.speech), ("German", german)):
            out.append({**tag, "dub": name, "shift": None, **measure(clip, audio)})
        silent = np.zeros_like(clip.speech)
        out.append({**tag, "dub": "silent", "shift": None, **measure(clip, silent)})
        log.info("%s done", clip.name)
    return {"rows": out, "skipped": skipped}


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """How often a shift was found (relative to the clip's own offset), what was confident and
    right, and what was warned about, per split."""
    lines = []
    for split in dict.fromkeys(r["split"] for r in rows):
        mine = [r for r in rows if r["split"] == split]
        base = {r["clip"]: r for r in mine if r["shift"] == 0 and r["measured"]}
        own = [r for r in mine if r["shift"] is not None]
        measured = [r for r in own if r["measured"]]

        def moved(r: dict[str, Any], base: dict[str, dict[str, Any]] = base) -> bool:
            return abs(r["offset"] - base[r["clip"]]["offset"] - r["shift"]) <= 1

        shifted_rows = [r for r in measured if r["shift"] != 0 and r["clip"] in base]
        confident = [r for r in measured if r["confident"] and r["clip"] in base]
        zero = [r["offset"] for r in base.values()]
        near = sum(abs(o) <= 1 for o in zero)
        yes_zero = [r["offset"] for r in base.values() if r["own_speech"] == "yes"]
        yes_near = sum(abs(o) <= 1 for o in yes_zero)
        other = [r for r in mine if r["shift"] is None and r["dub"] != "silent"]
        silent = [r for r in mine if r["dub"] == "silent"]
        r0_own = [r["r0"] for r in base.values()]
        r0_other = [r["r0"] for r in other if r["measured"]]
        lines += [
            f"**{split}** ({len({r['clip'] for r in mine})} clips)",
            "",
            f"- own speech, shifted by ±3/±6 frames: the offset moved with the shift (±1 frame) "
            f"in {sum(map(moved, shifted_rows))}/{len(shifted_rows)}; measured at all in "
            f"{len(measured)}/{len(own)} (a track under {MIN_PAIRS + MAX_LAG} frames is not)",
            f"- confident (offset_peak ≥ {OFFSET_PEAK}, offset_r ≥ {PHONETIC_MIN_R}, "
            f"≥ {OFFSET_MIN_SPEECH} speech frames): "
            f"{len(confident)}/{len(measured)}, of which moved with the shift "
            f"{sum(map(moved, confident))}/{len(confident)}",
            f"- own speech unshifted: offset within ±1 frame of 0 in "
            f"{near}/{len(zero)} clips ({yes_near}/{len(yes_zero)} of those marked own_speech = "
            f"yes); offsets "
            f"{sorted(zero)}",
            f"- warned about: unrelated speech {sum(r['warned'] for r in other)}/{len(other)}; "
            f"own speech shifted beyond ±2 {sum(r['warned'] for r in own if abs(r['shift']) > 2)}"
            f"/{sum(abs(r['shift']) > 2 for r in own)}; silent dubs measured "
            f"{sum(r['measured'] for r in silent)}/{len(silent)}, warned "
            f"{sum(r['warned'] for r in silent)}",
            f"- r at lag 0: own speech unshifted median {np.median(r0_own):.2f}; unrelated "
            f"speech median {np.median(r0_other):.2f} (max {max(r0_other):.2f})",
            "",
        ]
    return lines


def table(rows: list[dict[str, Any]]) -> list[str]:
    """One markdown row a clip and dub of the test split."""
    rows = [r for r in rows if r["split"] == "test"]
    lines = [
        "| clip | dub | r(0) | offset | r(best) | peak | speech frames | warned |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if not r["measured"]:
            lines.append(f"| {r['clip']} | {r['dub']} | — | — | — | — | {r['speech_frames']} "
                         f"| {'yes' if r['warned'] else 'no'} |")  # fmt: skip
            continue
        lines.append(
            f"| {r['clip']} | {r['dub']} | {r['r0']:.2f} | {r['offset']:+d} | "
            f"{r['r_best']:.2f} | {r['peak']:.2f} | {r['speech_frames']} | "
            f"{'**yes**' if r['warned'] else 'no'} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=250, help="Frames of each clip measured.")
    parser.add_argument("--shifts", type=int, nargs="+", default=[-6, -3, 0, 3, 6])
    parser.add_argument("--splits", nargs="+", default=["test"], help="clips.tsv splits.")
    parser.add_argument("--no-write", action="store_true", help="Print only.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load = os.getloadavg()[0]
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = run(args.frames, args.shifts, args.splits)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = summary(result["rows"])
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    head = (
        f"### {stamp} — {device_name('cpu')}, load {load:.2f} at start\n\n"
        f"`OMP_NUM_THREADS=1 python bench/phonetic_sync.py --splits {' '.join(args.splits)} "
        f"--frames {args.frames} --shifts {' '.join(str(s) for s in args.shifts)}`: the "
        f"clips of ../shared/data (first "
        f"{args.frames} frames), their real mouths against their own speech shifted by known "
        f"frames (positive: audio late), unrelated speech and silence; lags ±{MAX_LAG}. "
        f"CPU time {cpu:.0f} s (process; analysis cached in bench/out/cache), "
        f"wall {wall:.0f} s, peak RSS {peak_mb:.0f} MB.\n"
    )
    skipped = [f"- left out: {s}" for s in result["skipped"]]
    details = ["<details><summary>the test split, every clip and dub (all splits: "
               "bench/out/phonetic_sync/results.json)</summary>", "", *table(result["rows"]),
               "", "</details>", ""]  # fmt: skip
    text = "\n".join([head, *lines, *skipped, "", *details])
    print(text)
    if not args.no_write:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "results.json").write_text(json.dumps(result, indent=1))
        write_section(RESULTS, "phonetic sync", text)


if __name__ == "__main__":
    main()
