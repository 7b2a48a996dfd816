"""Quality benchmark (issue 19): each generator on every test clip, cross- and self-driven.

Every clip of the `test` split of ../shared/data/clips.tsv is rendered over its first
``--max-frames`` frames per generator, cross-driven (a dub in another language from audio.tsv,
rotating through LANGUAGES) and self-driven (the clip's own speech; `exemplar` then leaves the
frames within ±SELF_HOLDOUT of the rendered one out of its bank, so it cannot copy the true
frame): `lipdub render shots.yaml --shot ID` in a fresh process each, preset draft, lossless FFV1
(so the codec softens nothing). Each output is decoded beside its source and measured at the
source's resolution, on the source's first face track:

- detail: Laplacian energy (:func:`metrics.laplacian_energy`) in a tight box around the lips
  (:func:`metrics.lips_box` of the tracked landmarks), output ÷ source, on the dub's speech
  frames (loudness ≥ QC's LOUD_DB). Goal ≥ 0.8.
- LSE-C: lipdub's SyncNet (research-only weights; QC uses it only with qc_syncnet) on crops
  aligned with landmarks refitted on the output.
- r dub / r orig: Pearson r of the output's inner-lip opening (dlib refitted in the tracked
  boxes, as QC) with the dub's / the clip's own loudness (floored at SILENT_DB), best lag within
  ±MAX_LAG frames; r src: the source's opening against its own audio, the reference.
- identity: dlib face-descriptor cosine, output vs source, every IDENTITY_EVERY-th speech frame.
  Goal ≥ 0.95.
- flicker: mean frame-to-frame change in the lips box over the dub's silent frames, output ÷
  source (goal ≤ 1.1); seam: QC's seam ratio from the render's sidecar (none for passthrough,
  which pastes nothing).
- self-driven only, on speech frames: PSNR and SSIM of the lips box, LMD (mouth landmarks in the
  128 px aligned crop, as `lipdub eval`) against the real frames.

Writes a dated subsection under `## quality` in bench/results.md (or ``--results``), the numbers
as JSON, and per clip and drive a contact sheet (rows: speech frames; columns: source | each
generator; the lower face at native resolution) into bench/out/quality/.

    OMP_NUM_THREADS=1 python bench/quality.py [--generators stylesync,exemplar,passthrough]
        [--max-frames 150] [--clips aoc-1,mead_W036-1] [--results /tmp/x.md] [--reuse]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import math
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import yaml
from render import DATA, REPO, RESULTS, device_name, write_section  # bench/render.py

from lipdub.analysis.align import similarity_to_template, transform_points, warp_to_crop
from lipdub.analysis.faces import DlibFaceDetector
from lipdub.analysis.masks import mouth_opening
from lipdub.analysis.records import FaceTrack
from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.config.plan import load_plan
from lipdub.config.project import load_project
from lipdub.config.shots import Shot
from lipdub.eval import metrics, sync_scoring
from lipdub.eval.qc import LOUD_DB, SYNC_CROP, default_syncnet, qc_path
from lipdub.media.audio import SILENT_DB, loudness_per_frame, to_model_audio
from lipdub.media.read import open_video, probe
from lipdub.model.checkpoint import load_manifest
from lipdub.model.mel import MelFrontend
from lipdub.plugin_manager import PluginManager
from lipdub.render.shot_audio import dub_audio

log = logging.getLogger("bench.quality")

OUT = REPO / "bench" / "out" / "quality"
GENERATORS = ("stylesync", "exemplar", "passthrough")
LANGUAGES = ("de", "fr", "es", "it", "ja", "ko", "zh")  # Cross-driven dubs, in rotation.
DRIVES = ("cross", "self")
SELF_HOLDOUT = 12  # Self-driven exemplar: bank frames within ± this many frames are left out.
MAX_LAG = 3  # Frames searched either way for the opening/loudness correlation.
IDENTITY_EVERY = 5  # Identity descriptors on every this-many-th speech frame (dlib is slow).
IDENTITY_CROP = 256  # Aligned crop side the descriptors are taken on.
LMD_CROP = 128  # LMD in pixels of this aligned crop (the crop `lipdub eval` measures in).
SHEET_ROWS = 4  # Speech frames per contact sheet.
SHEET_MIN_COLUMN = 110  # Columns narrower than this are padded (never scaled) for the label.
TOML = """[project]
name = "quality-bench"
preset = "draft"

[settings]
codec = "ffv1"
container = ".mkv"
audio_fit = "pad-trim"
"""
COLUMNS = {"detail": ".3f", "LSE-C": ".4f", "r dub": ".2f", "r orig": ".2f", "r src": ".2f"}
COLUMNS |= {"identity": ".3f", "flicker": ".3f", "seam": ".3f", "PSNR": ".2f", "SSIM": ".3f"}
COLUMNS |= {"LMD": ".2f", "render s": ".1f"}
SELF_ONLY = ("PSNR", "SSIM", "LMD")
GOALS = {"detail": "≥ 0.8", "identity": "≥ 0.95", "flicker": "≤ 1.1"}


@dataclass(frozen=True)
class Case:
    """One test clip with its own speech and the dub it gets."""

    key: str  # "<speaker>-<n>", the clip's name in tables and shot ids.
    video: Path
    own: Path  # The clip's own speech (the clip itself, or its separate WAV).
    dub: Path  # Speech in another language.
    language: str


def load_cases(wanted: list[str]) -> list[Case]:
    """The test split, each clip with a dub in the next language of :data:`LANGUAGES`."""
    with open(DATA / "audio.tsv", newline="") as f:
        dubs = {r["language"]: DATA / r["file"] for r in csv.DictReader(f, delimiter="\t")}
    with open(DATA / "clips.tsv", newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["split"] == "test"]
    cases, seen = [], {}
    for i, r in enumerate(rows):
        seen[r["speaker"]] = seen.get(r["speaker"], 0) + 1
        lang = LANGUAGES[i % len(LANGUAGES)]
        own = DATA / (r["file"] if r["has_audio"] == "yes" else r["audio_file"])
        key = f"{r['speaker']}-{seen[r['speaker']]}"
        cases.append(Case(key, DATA / r["file"], own, dubs[lang], lang))
    unknown = set(wanted) - {c.key for c in cases}
    if unknown:
        raise SystemExit(f"unknown --clips {sorted(unknown)}; known: {[c.key for c in cases]}")
    return [c for c in cases if not wanted or c.key in wanted]


def shot_id(case: Case, drive: str, generator: str) -> str:
    return f"{case.key}.{drive}.{generator}"


def write_project(root: Path, cases: list[Case], generators: list[str], frames: int) -> None:
    """lipdub.toml and a shots.yaml with one shot per clip × drive × generator."""
    shots = []
    for c, drive, gen in ((c, d, g) for c in cases for d in DRIVES for g in generators):
        with open_video(c.video) as v:
            stop = min(frames, v.info.frame_count)
        settings: dict[str, Any] = {"generator": gen}
        if gen == "exemplar" and drive == "self":
            settings["stage_options"] = {"generator": {"holdout": SELF_HOLDOUT}}
        audio = str(c.dub if drive == "cross" else c.own)
        output = f"renders/{gen}/{c.key}_{drive}.mkv"
        dubs = [{"name": drive, "audio": audio, "output": output}]
        shots.append({"id": shot_id(c, drive, gen), "source": str(c.video), "in": 0, "out": stop})
        shots[-1].update(dubs=dubs, settings=settings)
    root.mkdir(parents=True, exist_ok=True)
    (root / "lipdub.toml").write_text(TOML)
    (root / "shots.yaml").write_text(yaml.safe_dump({"shots": shots}, sort_keys=False))


def render_shot(root: Path, shot: str, device: str, force: bool) -> float | None:
    """Render one shot in a fresh process; its wall time (None when skipped as done)."""
    cmd = [sys.executable, "-m", "lipdub", "render", str(root / "shots.yaml"), "--shot", shot]
    cmd += ["--json", "--device", device, "--project", str(root)] + (["--force"] * force)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"render {shot} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
    return None if '"skipped"' in proc.stdout else wall


def _complete(shot: Shot) -> bool:
    """The shot's output exists and covers it (--reuse keeps it; not one of another length)."""
    output = shot.dubs[0].output
    return output.is_file() and probe(output).frame_count == shot.frame_count


def analyse(shot: Shot, root: Path, plugins: PluginManager) -> FaceTrack | None:
    """The shot's first face track, from the analysis cache the render shares (as FaceWork)."""
    names = ("faces", "tracker", "masks")
    stages = {n: plugins.build(n, shot.settings) for n in names}
    result = analyze_shot(
        shot.source,
        shot.start,
        shot.stop,
        {},
        shot.settings.analysis_settings(),
        stages,
        root / ".lipdub" / "cache",
        conform=shot.settings.conform_vfr,
    )
    return result.tracks[0] if result.tracks else None


@dataclass
class Faces:
    """What the bench reads from one video (the source or an output) on a track's frames."""

    landmarks: np.ndarray  # (N, 68, 2) dlib refitted in the tracked boxes; NaN off the track.
    lips: dict[int, np.ndarray] = field(default_factory=dict)  # RGB in the source's lips box.
    move: dict[int, float] = field(default_factory=dict)  # Mean |Δgrey| from the frame before.
    aligned: list[np.ndarray] = field(default_factory=list)  # Sync crops, own landmarks.
    descriptors: dict[int, np.ndarray] = field(default_factory=dict)
    sheet: dict[int, np.ndarray] = field(default_factory=dict)  # Lower face, native pixels.


def read_faces(path: Path, start: int, n: int, track: FaceTrack, detector, want: dict) -> Faces:
    """Decode frames [start, start + n) of ``path`` and cut what :class:`Faces` holds."""
    faces = Faces(np.full((n, 68, 2), np.nan))
    prev = None
    with open_video(path) as video:
        for i, frame in enumerate(video.frames(start, start + n)):
            j = track.at(i)
            if j is None:
                prev = None
                continue
            lm = detector.landmarks(frame, [track.boxes[j]])[0]
            faces.landmarks[i] = lm
            x0, y0, x1, y1 = metrics.lips_box(track.landmarks[j], frame.shape)
            faces.lips[i] = frame[y0:y1, x0:x1].copy()
            if prev is not None:
                a, b = (cv2.cvtColor(f[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY) for f in (frame, prev))
                faces.move[i] = float(np.abs(a.astype(np.float32) - b).mean())
            prev = frame
            faces.aligned.append(
                warp_to_crop(frame, similarity_to_template(lm, SYNC_CROP), SYNC_CROP)
            )
            if i in want["identity"]:
                m = similarity_to_template(lm, IDENTITY_CROP)
                crop = warp_to_crop(frame, m, IDENTITY_CROP)
                lm_c = transform_points(m, lm)
                faces.descriptors[i] = metrics.crop_descriptors(detector, crop[None], lm_c[None])[0]
            if i in want["sheet"]:
                x0, y0, x1, y1 = want["sheet"][i]
                faces.sheet[i] = frame[y0:y1, x0:x1].copy()
    return faces


def lower_face_box(lm: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Jaw sides (points 2–14) and nose bridge (29) to chin (8), padded by 8 % of the width."""
    x0, x1 = lm[2:15, 0].min(), lm[2:15, 0].max()
    y0, y1 = lm[29, 1], lm[8, 1]
    m = 0.08 * (x1 - x0)
    h, w = shape[:2]
    return (max(0, int(x0 - m)), max(0, int(y0 - m)), min(w, int(x1 + m)), min(h, int(y1 + m)))


def openings(faces: Faces) -> np.ndarray:
    """Inner-lip opening per frame, in IODs (NaN off the track)."""
    return np.array([math.nan if np.isnan(m).any() else mouth_opening(m) for m in faces.landmarks])


def _mean(values) -> float | None:
    """Mean of the finite values; inf when all are inf (PSNR of identical pictures); else None."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    finite = [v for v in vals if math.isfinite(v)]
    return float(np.mean(finite)) if finite else (math.inf if vals else None)


def _ratio(out: list[float], src: list[float]) -> float | None:
    return float(np.mean(out) / np.mean(src)) if out and np.mean(src) > 1e-9 else None


def compare(src: Faces, out: Faces, track: FaceTrack, loud, own, drive: str, sync) -> dict:
    """The metrics of one output against its source (see the module docstring)."""
    speech = [i for i in src.lips if loud[i] >= LOUD_DB and i in out.lips]
    silent = [i for i in src.move if max(loud[i], loud[i - 1]) < SILENT_DB and i in out.move]
    lap = metrics.laplacian_energy
    row = {
        "detail": _ratio([lap(out.lips[i]) for i in speech], [lap(src.lips[i]) for i in speech]),
        "flicker": _ratio([out.move[i] for i in silent], [src.move[i] for i in silent]),
        "r dub": metrics.lagged_correlation(openings(out), np.maximum(loud, SILENT_DB), MAX_LAG),
        "r orig": metrics.lagged_correlation(openings(out), np.maximum(own, SILENT_DB), MAX_LAG),
        "identity": _mean(
            metrics.csim(out.descriptors[i], d)
            for i, d in src.descriptors.items()
            if i in out.descriptors
        ),
    }
    if sync is not None and len(out.aligned) >= metrics.SYNC_WINDOW:
        scorer, mel, audio, fps = sync
        res = sync_scoring.av_sync(scorer, np.stack(out.aligned), audio, fps, track.frames, mel)
        row["LSE-C"], row["offset"] = res.lse_c, res.offset
    if drive == "self":
        row["PSNR"] = _mean(metrics.psnr(out.lips[i], src.lips[i]) for i in speech)
        row["SSIM"] = _mean(metrics.ssim(out.lips[i], src.lips[i]) for i in speech)
        lmd = []
        for i in speech:
            m = similarity_to_template(track.landmarks[track.at(i)], LMD_CROP)
            lmd.append(metrics.lmd(*(transform_points(m, f.landmarks[i]) for f in (out, src))))
        row["LMD"] = _mean(lmd)
    return row


def measure(
    case: Case, drive: str, gens: list[str], plan, root: Path, detector, syncnet, failed
) -> dict:
    """Metrics of every generator's output for one clip and drive; writes its contact sheet.
    Outputs of the shots in ``failed`` are not measured (a file there is from an older run)."""
    shots = {g: plan.select((shot_id(case, drive, g),))[0] for g in gens}
    shot = shots[gens[0]]
    track = analyse(shot, root, PluginManager(root))
    if track is None:
        log.warning("%s: no face track; not measured", case.key)
        return {}

    def loudness(s: Shot) -> tuple[np.ndarray, np.ndarray]:
        audio = to_model_audio(dub_audio(s, s.dubs[0], s.dubs[0].audio)[0])
        return audio, loudness_per_frame(audio, s.frame_count, s.fps)

    audio, loud = loudness(shot)
    _, own = loudness(plan.select((shot_id(case, "self", gens[0]),))[0])
    speech = [i for i in track.frames.tolist() if loud[i] >= LOUD_DB]
    picks = np.linspace(0, len(speech) - 1, min(SHEET_ROWS, len(speech))).round().astype(int)
    with open_video(shot.source) as v:
        shape = (v.info.height, v.info.width)
    sheet = {speech[k]: lower_face_box(track.landmarks[track.at(speech[k])], shape) for k in picks}
    want = {"identity": set(speech[::IDENTITY_EVERY]), "sheet": sheet}
    n = shot.frame_count
    src = read_faces(shot.source, shot.start, n, track, detector, want)
    r_src = metrics.lagged_correlation(openings(src), np.maximum(own, SILENT_DB), MAX_LAG)
    sync = None
    if syncnet is not None:
        sync = (
            sync_scoring.SyncNetScorer(syncnet[1]),
            MelFrontend(syncnet[1].cfg.mel),
            audio,
            shot.fps,
        )
    rows: dict[str, dict[str, Any]] = {}
    sheets: dict[str, dict[int, np.ndarray]] = {"source": src.sheet}
    for g in gens:
        output = shots[g].dubs[0].output
        if shot_id(case, drive, g) in failed or not output.is_file():
            rows[g], sheets[g] = {"failed": True}, {}
            continue
        out = read_faces(output, 0, n, track, detector, want)
        qc = qc_path(output)
        seam = json.loads(qc.read_text()).get("seam_ratio") if qc.is_file() else None
        rows[g] = compare(src, out, track, loud, own, drive, sync) | {"r src": r_src, "seam": seam}
        sheets[g] = out.sheet
    contact_sheet(OUT / f"{case.key}_{drive}.png", sheets, sorted(sheet))
    return rows


def contact_sheet(path: Path, columns: dict[str, dict[int, np.ndarray]], frames: list[int]) -> None:
    """Rows = frames, columns = source | generators; crops pasted at native size, never scaled."""
    names = list(columns)
    widths = [max([SHEET_MIN_COLUMN] + [c.shape[1] for c in columns[n].values()]) for n in names]
    heights = [
        max([20] + [columns[n][i].shape[0] for n in names if i in columns[n]]) for i in frames
    ]
    left, top, gap, font, white = 56, 24, 4, cv2.FONT_HERSHEY_SIMPLEX, (255, 255, 255)
    size = (top + sum(heights) + gap * len(frames), left + sum(widths) + gap * len(names), 3)
    sheet = np.full(size, 40, np.uint8)
    y = top
    for i, h in zip(frames, heights, strict=True):
        cv2.putText(sheet, f"#{i}", (4, y + 16), font, 0.45, white, 1, cv2.LINE_AA)
        x = left
        for name, w in zip(names, widths, strict=True):
            if y == top:
                cv2.putText(sheet, name, (x + 2, 17), font, 0.45, white, 1, cv2.LINE_AA)
            crop = columns[name].get(i)
            if crop is None:
                cv2.putText(sheet, "failed", (x + 4, y + 16), font, 0.45, (255, 80, 80), 1)
            else:
                sheet[y : y + crop.shape[0], x : x + crop.shape[1]] = crop
            x += w + gap
        y += h + gap
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return "inf" if value == math.inf else f"{value:{fmt}}"


def markdown(result: dict[str, Any]) -> str:
    """The results subsection: the setup, the means side by side, then every clip."""
    gens, failed = result["generators"], result["failures"]
    lines = [
        f"\n### {result['date']} — {result['device']}\n",
        f"`{result['command']}` (torch {result['torch']}; {result['wall_min']:.0f} min in all). "
        f"{len(result['cases'])} test clips, first ≤ {result['max_frames']} frames each, one "
        "`lipdub render shots.yaml --shot ID` per clip × drive × generator in a fresh process "
        f"(preset draft: lite model, `stylesync` = `{result['weights']}`; lossless FFV1 output; "
        f"rest on silence on). Cross-driven dubs: {result['dubs']}. Self-driven `exemplar` with "
        f"`holdout = {SELF_HOLDOUT}`. render s = wall time of that process (start-up, analysis "
        "when not cached, QC included). Contact sheets in `bench/out/quality/`. Failed renders: "
        f"{', '.join(failed) or 'none'}.\n",
        "| metric | drive | goal | " + " | ".join(f"`{g}`" for g in gens) + " |",
        "| --- | --- | --- |" + " --- |" * len(gens),
    ]
    for key, fmt in COLUMNS.items():
        for drive in ("self",) if key in SELF_ONLY else DRIVES:
            cells = [_cell(result["means"][drive][g].get(key), fmt) for g in gens]
            lines.append(f"| {key} | {drive} | {GOALS.get(key, '')} | " + " | ".join(cells) + " |")
    lines += [
        "\nPer clip (r src is the source's own opening against its own audio):\n",
        "| clip | drive | generator | " + " | ".join(COLUMNS) + " |",
        "| --- | --- | --- |" + " --- |" * len(COLUMNS),
    ]
    for r in result["rows"]:
        cells = [("failed" if r.get("failed") else _cell(r.get(k), f)) for k, f in COLUMNS.items()]
        lines.append(f"| {r['clip']} | {r['drive']} | `{r['generator']}` | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generators", default=",".join(GENERATORS))
    parser.add_argument("--max-frames", type=int, default=150)
    parser.add_argument("--clips", default="", help="comma-separated clip keys (default: all)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="markdown file to update")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reuse", action="store_true", help="keep finished renders; re-measure")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    t0 = time.perf_counter()
    gens = [g for g in args.generators.split(",") if g]
    cases = load_cases([c for c in args.clips.split(",") if c])
    root = OUT / "project"
    write_project(root, cases, gens, args.max_frames)
    plan = load_plan(root / "shots.yaml", load_project(root), {})
    render_s: dict[str, float | None] = {}
    failures = []
    for shot in plan.shots:
        log.info("render %s", shot.id)
        try:
            force = not (args.reuse and _complete(shot))
            render_s[shot.id] = render_shot(root, shot.id, args.device, force=force)
        except RuntimeError as exc:
            log.error("%s", exc)
            failures.append(shot.id)
    # The measure: dlib's 68 points refitted on the output (whatever the render's own detector
    # and landmarker are), so numbers compare across changes of the analysis.
    detector = DlibFaceDetector("hog")
    syncnet, rows = default_syncnet(), []
    for case, drive in ((c, d) for c in cases for d in DRIVES):
        log.info("measure %s %s", case.key, drive)
        for g, row in measure(case, drive, gens, plan, root, detector, syncnet, failures).items():
            row["render s"] = render_s.get(shot_id(case, drive, g))
            rows.append({"clip": case.key, "drive": drive, "generator": g, **row})

    def mean(d: str, g: str) -> dict[str, float | None]:
        mine = [r for r in rows if r["drive"] == d and r["generator"] == g]
        return {k: _mean(r.get(k) for r in mine) for k in COLUMNS}

    result = {
        "command": "python bench/quality.py " + shlex.join(sys.argv[1:]),
        "device": device_name(args.device),
        "date": str(dt.date.today()),
        "torch": torch.__version__,
        "weights": load_manifest().default_generator,
        "max_frames": args.max_frames,
        "generators": gens,
        "cases": [{"clip": c.key, "video": c.video.name, "dub": c.dub.name} for c in cases],
        "dubs": ", ".join(f"{c.key} {c.language}" for c in cases),
        "failures": failures,
        "rows": rows,
        "means": {d: {g: mean(d, g) for g in gens} for d in DRIVES},
        "wall_min": (time.perf_counter() - t0) / 60,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "quality.json").write_text(json.dumps(result, indent=1, default=str))
    text = markdown(result)
    write_section(args.results, "quality", text, replace=text.strip().splitlines()[0])
    print(text)
    print(f"written to {args.results}; contact sheets in {OUT}")


if __name__ == "__main__":
    main()
