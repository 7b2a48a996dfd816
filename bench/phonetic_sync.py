"""Phonetic sync benchmark (issue 25): does QC's clean sync measure find a known A/V offset?

QC's default sync measure (:mod:`lipdub.eval.phonetic_sync`) correlates the delivered mouth's
opening with the opening the dub's visemes ask for, over lags ±15 frames. Here the "delivered
mouth" is the real one: every clip of the `test` split of ../shared/data/clips.tsv (first
``--frames`` frames; its longest face track; the default landmarker, the analysis QC's
landmarks come from), with the inner-lip gap per frame. Each clip is "dubbed" with:

- its own speech shifted by ``--shifts`` frames (positive: the audio late; silence fills the
  start, or the start is cut): the measure should find each shift, confidently;
- unrelated speech (the next clip's own speech, and a German line from audio/): no offset should
  be warned about;
- silence: no measure at all.

The viseme track is computed on the shifted audio by the bundled recognizer, as a render does.
Writes a dated subsection under `## phonetic sync` in bench/results.md and the numbers as JSON
into bench/out/phonetic_sync/.

    OMP_NUM_THREADS=1 python bench/phonetic_sync.py [--frames 250] [--shifts -6 -3 0 3 6]
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
from lipdub.eval.phonetic_sync import MAX_LAG, expected_opening, phonetic_sync
from lipdub.eval.qc import LOUD_DB
from lipdub.eval.qc_checks import phonetic_offset_warning
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
    return Clip(Path(row["file"]).stem.split("__")[-1], fps, opening, speech)


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
    peak = round(res.peak, 3)
    warned = phonetic_offset_warning(res.offset, peak, round(res.r_best, 3), speech) is not None
    return {
        "measured": True,
        "r0": round(res.r0, 3),
        "offset": res.offset,
        "r_best": round(res.r_best, 3),
        "peak": peak,
        "speech_frames": speech,
        "warned": warned,
    }


def run(frames: int, shifts: list[int]) -> dict[str, Any]:
    """Every clip, every dub; the rows and the summary."""
    with (DATA / "clips.tsv").open() as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["split"] == "test"]
    clips = [load_clip(r, frames) for r in rows]
    german = to_model_audio(load_audio(DATA / "audio" / GERMAN))
    out: list[dict[str, Any]] = []
    for i, clip in enumerate(clips):
        other = clips[(i + 1) % len(clips)]
        for s in shifts:
            out.append({"clip": clip.name, "dub": f"own {s:+d}", "shift": s,
                        **measure(clip, shifted(clip.speech, s, clip.fps))})  # fmt: skip
        for name, audio in ((f"other ({other.name})", other.speech), ("German", german)):
            out.append({"clip": clip.name, "dub": name, "shift": None, **measure(clip, audio)})
        silent = np.zeros_like(clip.speech)
        out.append({"clip": clip.name, "dub": "silent", "shift": None, **measure(clip, silent)})
        log.info("%s done", clip.name)
    return {"rows": out}


def summary(rows: list[dict[str, Any]]) -> list[str]:
    """The lines that say how often the shift was found, and what was warned about."""
    own = [r for r in rows if r["shift"] is not None]
    found = [r for r in own if r["measured"] and r["offset"] == r["shift"]]
    near = [r for r in own if r["measured"] and abs(r["offset"] - r["shift"]) <= 1]
    confident = [r for r in own if r["measured"] and r["peak"] >= 0.5]
    right = [r for r in confident if abs(r["offset"] - r["shift"]) <= 1]
    shifted_rows = [r for r in own if abs(r["shift"]) > 2]
    warned = [r for r in shifted_rows if r["warned"]]
    zero_warned = [r for r in own if abs(r["shift"]) <= 2 and r["warned"]]
    other = [r for r in rows if r["shift"] is None and r["dub"] != "silent"]
    silent = [r for r in rows if r["dub"] == "silent"]
    r0_own = [r["r0"] for r in own if r["measured"] and r["shift"] == 0]
    r0_other = [r["r0"] for r in other if r["measured"]]
    return [
        f"- own speech, shifted: offset found exactly in {len(found)}/{len(own)}, within ±1 "
        f"frame in {len(near)}/{len(own)}; confident (peak ≥ 0.5) in {len(confident)}/{len(own)},"
        f" of which right (±1) {len(right)}/{len(confident)}",
        f"- shifts beyond ±2 frames warned about: {len(warned)}/{len(shifted_rows)}; own "
        f"speech within ±2 frames warned about: {len(zero_warned)}",
        f"- unrelated dubs warned about: {sum(r['warned'] for r in other)}/{len(other)}; silent "
        f"dubs measured: {sum(r['measured'] for r in silent)}/{len(silent)}, warned: "
        f"{sum(r['warned'] for r in silent)}",
        f"- r at lag 0: own speech (unshifted) median {np.median(r0_own):.2f} "
        f"(min {min(r0_own):.2f}); unrelated dubs median {np.median(r0_other):.2f} "
        f"(max {max(r0_other):.2f})",
    ]


def table(rows: list[dict[str, Any]]) -> list[str]:
    """One markdown row a clip and dub."""
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
    parser.add_argument("--no-write", action="store_true", help="Print only.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load = os.getloadavg()[0]
    t0, cpu0 = time.perf_counter(), time.process_time()
    result = run(args.frames, args.shifts)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = summary(result["rows"])
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    head = (
        f"### {stamp} — {device_name('cpu')}, load {load:.2f} at start\n\n"
        f"`OMP_NUM_THREADS=1 python bench/phonetic_sync.py --frames {args.frames} --shifts "
        f"{' '.join(str(s) for s in args.shifts)}`: the test split's clips (first "
        f"{args.frames} frames), their real mouths against their own speech shifted by known "
        f"frames (positive: audio late), unrelated speech and silence; lags ±{MAX_LAG}. "
        f"CPU time {cpu:.0f} s (process; analysis cached in bench/out/cache), "
        f"wall {wall:.0f} s, peak RSS {peak_mb:.0f} MB.\n"
    )
    text = "\n".join([head, *lines, "", *table(result["rows"]), ""])
    print(text)
    if not args.no_write:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "results.json").write_text(json.dumps(result, indent=1))
        write_section(RESULTS, "phonetic sync", text)


if __name__ == "__main__":
    main()
