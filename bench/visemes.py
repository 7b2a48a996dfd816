"""Viseme benchmark (issue 24): does the mouth say the dub's words?

Every clip of the `test` split of ../shared/data/clips.tsv is dubbed with synthetic lines whose
phone timings are known exactly: eSpeak NG speaks a sentence rich in p/b/m, o/u and f/v and
reports each phone's start (its phoneme events). Six languages, two per clip in rotation (each
language on three clips). Each dub is rendered (`lipdub render --shot ID` in a fresh process,
preset draft, lossless FFV1, QC off) as:

- `after`: the default exemplar render, no script (phones recognised from the audio);
- `script`: the same with the dub's text in shots.yaml (G2P + forced alignment);
- `before`: the exemplar with the phonetic selection off (``viseme = 0``, ``replay = 0``,
  ``apart = 0``): the selection as it was before the phonetic path (driver shape target only);
- `driver-v1` (ask for it with ``--variants``): the default render with the research-only
  learned driver ``mouth-driver-v1`` instead of the default ``viseme-table`` (issue 25);
- `stylesync` (with ``--stylesync``): the `lite-v4` StyleSync model.

Each output is decoded beside its source and measured with dlib's 68 points refitted in the
tracked boxes (as bench/quality.py), at the source's resolution:

- BCR: share of the dub's p/b/m whose window (2 frames before to 1 after the phone's start)
  has an inner-lip gap at or below the actor's closed level (10th percentile of the source's gap
  + 0.02 IOD) — :mod:`lipdub.eval.closures`; chance: the same test at every speech frame;
- rounding: mean mouth width on o/u/y (the phones' spans) over the mean on i/e; goal ≤ 0.93;
- open/bilabial: mean gap on /a/ spans over the mean gap at the p/b/m frames; goal ≥ 1.8;
- f/v: share of f/v whose window has the gap at most twice the closed level (lower lip at the
  teeth, as far as 68 points can tell);
- detail, identity, flicker (bench/quality.py's), r dub (opening vs the dub's loudness), r orig
  (vs the clip's own speech, which the picture used to say) and r other (vs an unrelated clip's
  speech: what r orig must not exceed);
- render s: wall time of the render process.

Self-driven (``--self``): each clip driven by its own audio, ``holdout = 25`` (variants
`before`, `after` and `driver-v1`, those asked for); closure recall
and precision of the output against the real mouth on speech frames, and Pearson r of the gap
and of the width.

Writes a dated subsection under `## visemes` in bench/results.md, the numbers as JSON (with
per-frame gaps and widths), and per clip and language a strip of p/b/m frames and one of o/u
then i/e frames (`_ou_ie`; rows: source, each variant; native resolution) into
bench/out/visemes/.

    OMP_NUM_THREADS=1 python bench/visemes.py [--clips aoc-1] [--stylesync] [--self] [--reuse]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from quality import (
    TOML,
    Faces,
    _mean,
    analyse,
    compare,
    contact_sheet,
    lower_face_box,
    read_faces,
    render_shot,
)
from render import DATA, REPO, RESULTS, device_name, write_section  # bench/render.py

from lipdub.analysis.faces import DlibFaceDetector
from lipdub.analysis.mouth_class import closed_level, mouth_geometry
from lipdub.analysis.mouth_shape import mouth_shape
from lipdub.config.plan import load_plan
from lipdub.config.project import load_project
from lipdub.config.shots import Dub as ShotDub
from lipdub.eval import metrics
from lipdub.eval.closures import check_closures
from lipdub.eval.qc import LOUD_DB
from lipdub.media.audio import SILENT_DB, loudness_per_frame, save_wav, to_model_audio
from lipdub.media.read import open_video
from lipdub.phonetics.visemes import Viseme, viseme_of
from lipdub.plugin_manager import PluginManager
from lipdub.render.shot_audio import dub_audio
from lipdub.speech import synthesize_phones

log = logging.getLogger("bench.visemes")

OUT = REPO / "bench" / "out" / "visemes"
#: One sentence per language (eSpeak NG voice names), each with p/b/m, o/u, f/v and /a/ at
#: about the rate of ordinary speech (1.2–1.6 p/b/m a second): denser lines leave no frame far
#: from a closure, and the chance level (every speech frame tested) then says nothing.
LINES = {
    "de": "Der Vater kauft heute Obst und Brot, und wir fahren morgen früh mit dem Bus zum Hafen.",
    "fr": "Ma sœur arrive toujours au bureau avant la pluie, "
    "et nous avons vu une jolie robe bleue.",
    "es": "Mi hermano vive en un pueblo pequeño cerca del mar, y los jueves compra fruta fresca.",
    "it": "Il mio amico porta sempre un buon libro quando viaggia in treno verso Roma.",
    "en": "My father found an old book of poems, and we read it aloud before the morning bus.",
    "pt": "O meu pai comprou uma bola nova para o filho, e todos foram à praia no domingo.",
}
LANGS_PER_CLIP = 2
VARIANTS = ("before", "after", "script")
SELF_VARIANTS = ("before", "after", "driver-v1")  # Those of them asked for run self-driven too.
LEARNED_DRIVER = "mouth-driver-v1"  # The `driver-v1` variant's driver.
SELF_HOLDOUT = 25
MAX_LAG = 3  # Frames searched either way for the opening/loudness correlations.
STRIP_FRAMES = 8  # p/b/m per strip.
VOWEL_FRAMES = 4  # o/u and i/e phones each in the vowel strip.
GOALS = {
    "BCR": "≥ 0.8",
    "chance": "≤ 0.4",
    "rounding": "≤ 0.93",
    "open/bilabial": "≥ 1.8",
    "detail": "≥ 0.8",
    "identity": "≥ 0.97",
    "flicker": "≤ 1.2",
}
CROSS_COLUMNS = {
    "BCR": ".2f",
    "chance": ".2f",
    "rounding": ".3f",
    "open/bilabial": ".2f",
    "f/v": ".2f",
    "detail": ".3f",
    "identity": ".3f",
    "flicker": ".3f",
    "r dub": ".2f",
    "r orig": ".2f",
    "r other": ".2f",
    "render s": ".1f",
}
SELF_COLUMNS = {
    "recall": ".2f",
    "precision": ".2f",
    "real closed": ".2f",
    "r gap": ".2f",
    "r width": ".2f",
    "detail": ".3f",
    "render s": ".1f",
}


@dataclass(frozen=True)
class Clip:
    key: str  # "<speaker>-<n>".
    video: Path
    own: Path  # Its own speech.
    languages: tuple[str, ...]


@dataclass(frozen=True)
class Dub:
    language: str
    wav: Path
    phones: list[tuple[str, float]]  # (IPA phone, start s) from eSpeak's events.


def load_clips(wanted: list[str]) -> list[Clip]:
    with open(DATA / "clips.tsv", newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["split"] == "test"]
    langs = list(LINES)
    clips, seen = [], {}
    for i, r in enumerate(rows):
        seen[r["speaker"]] = seen.get(r["speaker"], 0) + 1
        own = DATA / (r["file"] if r["has_audio"] == "yes" else r["audio_file"])
        mine = tuple(langs[(LANGS_PER_CLIP * i + k) % len(langs)] for k in range(LANGS_PER_CLIP))
        clips.append(Clip(f"{r['speaker']}-{seen[r['speaker']]}", DATA / r["file"], own, mine))
    return [c for c in clips if not wanted or c.key in wanted]


def make_dubs(folder: Path) -> dict[str, Dub]:
    """Speak every line once; keep the WAV and the phone events."""
    folder.mkdir(parents=True, exist_ok=True)
    dubs = {}
    for lang, text in LINES.items():
        audio, events = synthesize_phones(text, lang)
        wav = folder / f"{lang}.wav"
        save_wav(audio, wav)
        phones = [(e.phone, e.start_s) for e in events]
        (folder / f"{lang}.json").write_text(json.dumps(phones, ensure_ascii=False))
        dubs[lang] = Dub(lang, wav, phones)
    return dubs


def self_variants(variants: list[str]) -> list[str]:
    """The variants that also run self-driven: :data:`SELF_VARIANTS` that were asked for."""
    return [v for v in SELF_VARIANTS if v in variants]


def shot_id(clip: Clip, what: str, variant: str) -> str:
    return f"{clip.key}.{what}.{variant}"


def write_project(
    root: Path, clips: list[Clip], dubs: dict[str, Dub], variants: list[str], frames: int,
    self_drive: bool,
) -> None:  # fmt: skip
    shots = []
    for clip in clips:
        with open_video(clip.video) as v:
            stop = min(frames, v.info.frame_count)
        jobs = [(lang, v) for lang in clip.languages for v in variants]
        jobs += [("self", v) for v in self_variants(variants)] if self_drive else []
        for what, variant in jobs:
            options: dict[str, Any] = {}
            settings: dict[str, Any] = {"generator": "exemplar", "qc": False}
            if variant == "stylesync":
                settings["generator"] = "stylesync"
            if variant == "before":
                options.update(viseme=0, replay=0, apart=0)
            if variant == "driver-v1":
                options["driver"] = LEARNED_DRIVER
            if what == "self":
                options["holdout"] = SELF_HOLDOUT
            if options:
                settings["stage_options"] = {"generator": options}
            dub: dict[str, Any] = {
                "name": what,
                "audio": str(clip.own if what == "self" else dubs[what].wav),
                "output": f"renders/{variant}/{clip.key}_{what}.mkv",
            }
            if variant == "script":
                dub.update(text=LINES[what], language=what)
            elif what != "self":
                dub["language"] = what
            sid = shot_id(clip, what, variant)
            shots.append({"id": sid, "source": str(clip.video), "in": 0, "out": stop})
            shots[-1].update(dubs=[dub], settings=settings)
    root.mkdir(parents=True, exist_ok=True)
    (root / "lipdub.toml").write_text(TOML)
    (root / "shots.yaml").write_text(yaml.safe_dump({"shots": shots}, sort_keys=False))


def geometry(faces: Faces) -> tuple[np.ndarray, np.ndarray]:
    """(gap, width) per frame in IOD (NaN off the track)."""
    lm = faces.landmarks
    ok = ~np.isnan(lm).any(axis=(1, 2))
    gap = np.full(len(lm), np.nan)
    width = np.full(len(lm), np.nan)
    if ok.any():
        g = mouth_geometry(mouth_shape(lm[ok]))
        gap[ok], width[ok] = g.gap, g.width
    return gap, width


def phone_frames(dub: Dub, fps: float, n: int) -> dict[Viseme, list[int]]:
    """Frames covered by each class's phones (start to the next phone's start, ≤ 0.25 s)."""
    out: dict[Viseme, list[int]] = {v: [] for v in Viseme}
    for k, (phone, start) in enumerate(dub.phones):
        end = dub.phones[k + 1][1] if k + 1 < len(dub.phones) else start + 0.1
        end = min(end, start + 0.25)
        a, b = math.floor(start * fps), math.floor(end * fps)
        out[viseme_of(phone)] += [f for f in range(a, max(a + 1, b)) if f < n]
    return out


def _span_middles(dub: Dub, cls: Viseme, fps: float, n: int) -> list[int]:
    """The middle frame of each of the dub's phones of class ``cls`` (spans as phone_frames)."""
    out = []
    for k, (phone, start) in enumerate(dub.phones):
        if viseme_of(phone) != cls:
            continue
        end = dub.phones[k + 1][1] if k + 1 < len(dub.phones) else start + 0.1
        mid = math.floor((start + min(end, start + 0.25)) / 2 * fps)
        if mid < n:
            out.append(mid)
    return out


def _nanmean(x: np.ndarray, idx: list[int]) -> float:
    vals = x[idx] if idx else np.array([])
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if vals.size else math.nan


def cross_row(dub: Dub, src: Faces, out: Faces, loud: np.ndarray, fps: float) -> dict[str, Any]:
    n = len(loud)
    s_gap, _ = geometry(src)
    o_gap, o_width = geometry(out)
    level = closed_level(s_gap)
    bil = sorted({math.floor(t * fps) for p, t in dub.phones if viseme_of(p) == Viseme.CLOSED})
    bil = [f for f in bil if f < n]
    check = check_closures(o_gap, level, bil, speech=loud >= LOUD_DB) if level else None
    spans = phone_frames(dub, fps, n)
    at_bil = sorted({g for f in bil for g in (f - 1, f) if 0 <= g < n})
    fv = [math.floor(t * fps) for p, t in dub.phones if viseme_of(p) == Viseme.LIP_TEETH]
    fv_check = check_closures(o_gap, 2 * level, [f for f in fv if f < n]) if level else None
    return {
        "BCR": check.share if check else None,
        "chance": check.chance if check else None,
        "bilabials": len(check.frames) if check else 0,
        "missed": list(check.missed) if check else [],
        "rounding": _nanmean(o_width, spans[Viseme.ROUNDED])
        / _nanmean(o_width, spans[Viseme.SPREAD]),
        "open/bilabial": _nanmean(o_gap, spans[Viseme.OPEN]) / _nanmean(o_gap, at_bil),
        "f/v": fv_check.share if fv_check else None,
        # Per frame, for reading one output by eye (visemes.json only, not the tables).
        "trace": {
            "gap": [None if not np.isfinite(g) else round(float(g), 4) for g in o_gap],
            "width": [None if not np.isfinite(w) else round(float(w), 4) for w in o_width],
            "source gap": [None if not np.isfinite(g) else round(float(g), 4) for g in s_gap],
            "level": level,
            "speech": np.flatnonzero(loud >= LOUD_DB).tolist(),
            "bilabial": bil,
            "rounded": spans[Viseme.ROUNDED],
            "spread": spans[Viseme.SPREAD],
        },
    }


def self_row(src: Faces, out: Faces, loud: np.ndarray) -> dict[str, Any]:
    s_gap, s_width = geometry(src)
    o_gap, o_width = geometry(out)
    level = closed_level(s_gap)
    speech = (loud >= LOUD_DB) & np.isfinite(s_gap) & np.isfinite(o_gap)
    if level is None or speech.sum() < 3:
        return {}
    real, made = s_gap[speech] <= level, o_gap[speech] <= level
    both = float((real & made).sum())
    return {
        "recall": both / real.sum() if real.any() else None,
        "precision": both / made.sum() if made.any() else None,
        "real closed": float(real.mean()),
        "r gap": float(np.corrcoef(s_gap[speech], o_gap[speech])[0, 1]),
        "r width": float(np.corrcoef(s_width[speech], o_width[speech])[0, 1]),
    }


def strip(path: Path, frames: list[int], faces: dict[str, Faces]) -> None:
    """Columns = source and each variant, rows = p/b/m frames; crops at native resolution."""
    contact_sheet(path, {name: f.sheet for name, f in faces.items()}, frames)


def measure_clip(
    clip: Clip, dubs: dict[str, Dub], variants: list[str], plan, root: Path, detector,
    failed: list[str], self_drive: bool,
) -> list[dict[str, Any]]:  # fmt: skip
    rows: list[dict[str, Any]] = []
    first = plan.select((shot_id(clip, clip.languages[0], variants[0]),))[0]
    track = analyse(first, root, PluginManager(root))
    if track is None:
        log.warning("%s: no face track", clip.key)
        return rows
    n = first.frame_count
    fps = float(first.fps)
    with open_video(first.source) as v:
        shape = (v.info.height, v.info.width)
    other = next(c for c in load_clips([]) if c.video != clip.video)

    def loudness_of(path: Path) -> np.ndarray:
        d = ShotDub(name="x", output=Path("/dev/null"), audio=path)
        audio = to_model_audio(dub_audio(first, d, path)[0])
        return loudness_per_frame(audio, n, first.fps)

    own, unrelated = loudness_of(clip.own), loudness_of(other.own)
    whats = [*clip.languages, *(["self"] if self_drive else [])]
    for what in whats:
        if what == "self":
            loud = own
            bil: list[int] = []
        else:
            loud = loudness_of(dubs[what].wav)
            bil = sorted({math.floor(t * fps) for p, t in dubs[what].phones
                          if viseme_of(p) == Viseme.CLOSED and t * fps < n})  # fmt: skip
        picks = [bil[k] for k in np.linspace(0, len(bil) - 1, min(STRIP_FRAMES, len(bil)))
                 .round().astype(int)] if bil else []  # fmt: skip
        # Show the frame of each window where the output is most closed: the start frame - 1.
        sheet_frames = sorted({max(0, f - 1) for f in picks})
        # And the middle frame of a few o/u, then i/e phones (rounding: narrower on the first).
        vowels: list[int] = []
        if what != "self":
            for cls in (Viseme.ROUNDED, Viseme.SPREAD):
                mids = _span_middles(dubs[what], cls, fps, n)
                take = np.linspace(0, len(mids) - 1, min(VOWEL_FRAMES, len(mids))).round()
                vowels += [mids[int(k)] for k in take] if mids else []
        want = {"identity": set(np.flatnonzero(loud >= LOUD_DB)[::5].tolist()), "sheet": {}}
        for f in {*sheet_frames, *vowels}:
            j = track.at(f)
            if j is not None:
                want["sheet"][f] = lower_face_box(track.landmarks[j], shape)
        src = read_faces(first.source, first.start, n, track, detector, want)
        strips: dict[str, Faces] = {"source": src}
        for variant in self_variants(variants) if what == "self" else variants:
            sid = shot_id(clip, what, variant)
            shot = plan.select((sid,))[0]
            output = shot.dubs[0].output
            if sid in failed or not output.is_file():
                rows.append({"clip": clip.key, "what": what, "variant": variant, "failed": True})
                continue
            out = read_faces(output, 0, n, track, detector, want)
            strips[variant] = out
            base = compare(src, out, track, loud, own, "self" if what == "self" else "cross", None)
            row = {"clip": clip.key, "what": what, "variant": variant, **base}
            row["r other"] = metrics.lagged_correlation(
                _opening(out), np.maximum(unrelated, SILENT_DB), MAX_LAG
            )
            if what == "self":
                row.update(self_row(src, out, loud))
            else:
                row.update(cross_row(dubs[what], src, out, loud, fps))
            rows.append(row)
        if sheet_frames:
            strip(OUT / f"{clip.key}_{what}.png", sheet_frames, strips)
        if vowels:
            strip(OUT / f"{clip.key}_{what}_ou_ie.png", vowels, strips)
    return rows


def _opening(faces: Faces) -> np.ndarray:
    return geometry(faces)[0]


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:{fmt}}"


def markdown(result: dict[str, Any]) -> str:
    variants = result["variants"]
    rows = result["rows"]
    lines = [
        # The variants are in the heading: a run of other variants on the same day keeps its own.
        f"\n### {result['date']} — {result['device']} — {', '.join(variants)}\n",
        f"`{result['command']}` (torch {result['torch']}; {result['wall_min']:.0f} min in all; "
        f"1-min load average {result.get('load', ['?'])[0]} at the start, "
        f"{result.get('load', ['?', '?'])[-1]} at the end: render s is wall time). "
        f"{len(result['clips'])} test clips, first ≤ {result['max_frames']} frames, each dubbed "
        f"in {LANGS_PER_CLIP} of {len(LINES)} languages by eSpeak NG ({result['assignments']}); "
        "one `lipdub render --shot ID` per clip × dub × variant in a fresh process (preset "
        "draft, lossless FFV1, QC off). Measured with dlib's 68 points refitted on the output. "
        f"Failed renders: {', '.join(result['failures']) or 'none'}. Strips of p/b/m frames "
        "(source, then each variant) in `bench/out/visemes/`.\n",
        "Means over clips, per language (BCR / chance / rounding / open-bilabial):\n",
        "| language | " + " | ".join(f"`{v}`" for v in variants) + " |",
        "| --- |" + " --- |" * len(variants),
    ]
    for lang in LINES:
        cells = []
        for v in variants:
            mine = [
                r for r in rows if r["what"] == lang and r["variant"] == v and not r.get("failed")
            ]
            vals = [
                _mean(r.get(k) for r in mine)
                for k in ("BCR", "chance", "rounding", "open/bilabial")
            ]
            cells.append(" / ".join(_cell(x, ".2f") for x in vals))
        lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    lines += [
        "\nMeans over every cross-language dub:\n",
        "| metric | goal | " + " | ".join(f"`{v}`" for v in variants) + " |",
        "| --- | --- |" + " --- |" * len(variants),
    ]
    for key, fmt in CROSS_COLUMNS.items():
        cells = []
        for v in variants:
            mine = [r for r in rows if r["what"] != "self" and r["variant"] == v]
            cells.append(_cell(_mean(r.get(key) for r in mine if not r.get("failed")), fmt))
        lines.append(f"| {key} | {GOALS.get(key, '')} | " + " | ".join(cells) + " |")
    selfs = [r for r in rows if r["what"] == "self"]
    if selfs:
        lines += [
            f"\nSelf-driven (own audio, holdout {SELF_HOLDOUT}), means over clips:\n",
            "| metric | " + " | ".join(f"`{v}`" for v in self_variants(variants)) + " |",
            "| --- |" + " --- |" * len(self_variants(variants)),
        ]
        for key, fmt in SELF_COLUMNS.items():
            cells = [
                _cell(
                    _mean(r.get(key) for r in selfs if r["variant"] == v and not r.get("failed")),
                    fmt,
                )
                for v in self_variants(variants)
            ]
            lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += [
        "\nPer output:\n",
        "| clip | dub | variant | " + " | ".join(CROSS_COLUMNS) + " |",
        "| --- | --- | --- |" + " --- |" * len(CROSS_COLUMNS),
    ]
    for r in rows:
        if r["what"] == "self":
            continue
        cells = [
            ("failed" if r.get("failed") else _cell(r.get(k), f)) for k, f in CROSS_COLUMNS.items()
        ]
        lines.append(
            f"| {r['clip']} | {r['what']} | `{r['variant']}` | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", default="", help="comma-separated clip keys (default: all)")
    parser.add_argument("--max-frames", type=int, default=150)
    parser.add_argument("--stylesync", action="store_true", help="also render lite-v4")
    parser.add_argument("--self", dest="self_drive", action="store_true", help="self-driven too")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--reuse", action="store_true", help="keep finished renders; re-measure")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    t0 = time.perf_counter()
    load_start = os.getloadavg()[0]
    variants = [v for v in args.variants.split(",") if v] + (["stylesync"] * args.stylesync)
    clips = load_clips([c for c in args.clips.split(",") if c])
    root = OUT / "project"
    dubs = make_dubs(OUT / "dubs")
    write_project(root, clips, dubs, variants, args.max_frames, args.self_drive)
    plan = load_plan(root / "shots.yaml", load_project(root), {})
    render_s: dict[str, float | None] = {}
    failures: list[str] = []
    for shot in plan.shots:
        output = shot.dubs[0].output
        if args.reuse and output.is_file():
            continue
        log.info("render %s", shot.id)
        try:
            render_s[shot.id] = render_shot(root, shot.id, "cpu", force=True)
        except RuntimeError as exc:
            log.error("%s", exc)
            failures.append(shot.id)
    # The measure: dlib's 68 points refitted on the output (whatever the render's own detector
    # and landmarker are), so numbers compare across changes of the analysis.
    detector = DlibFaceDetector("hog")
    rows: list[dict[str, Any]] = []
    for clip in clips:
        log.info("measure %s", clip.key)
        for row in measure_clip(
            clip, dubs, variants, plan, root, detector, failures, args.self_drive
        ):
            row["render s"] = render_s.get(shot_id(clip, row["what"], row["variant"]))
            rows.append(row)
    result = {
        "command": "python bench/visemes.py " + shlex.join(sys.argv[1:]),
        "device": device_name("cpu"),
        "date": str(dt.date.today()),
        "torch": torch.__version__,
        "max_frames": args.max_frames,
        "variants": variants,
        "clips": [c.key for c in clips],
        "assignments": ", ".join(f"{c.key} {'+'.join(c.languages)}" for c in clips),
        "failures": failures,
        "rows": rows,
        "wall_min": (time.perf_counter() - t0) / 60,
        "load": [round(load_start, 2), round(os.getloadavg()[0], 2)],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "visemes.json").write_text(json.dumps(result, indent=1, default=str))
    text = markdown(result)
    # The whole heading line: one that only starts with it ("— after, driver-v1") is another's.
    write_section(args.results, "visemes", text, replace=text.strip().splitlines()[0] + "\n")
    print(text)


if __name__ == "__main__":
    main()
