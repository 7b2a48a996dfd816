"""Face leak benchmark (issue 27): does a dub change anything beyond the lower face?

Renders the held-out clips of bench/quality.py (the `test` split of ../shared/data/clips.tsv)
and the two 1080×1920 `media` presenters (collar, necklace, hair and background near the face),
cross-driven (a dub in another language, as bench/quality.py rotates them), over their first
``--max-frames`` frames: `lipdub render shots.yaml --shot ID` in a fresh process each, preset
draft, lossless FFV1 (so a changed pixel is the render's, not the codec's). With ``--before
PATH`` every shot is rendered a second time by the lipdub package found under PATH (another
checkout, e.g. `git worktree add /tmp/old main`), side by side.

Each output is decoded beside its source; on every frame, the source's tracked landmarks give

- the face: their convex hull (brows to chin) grown by FACE_ROOM IOD (the chin drops with a
  mouth opened wider than the source's; the feather);
- outside PSNR: PSNR of the output against the source over every pixel outside the face, all
  frames pooled (inf: not one of them changed); leak px: changed pixels outside the face per
  frame; reach: the farthest changed pixel beyond the landmarks' hull, in IOD;
- nose px: changed pixels inside the hull of the nose (points 27–35) per frame;
- seam: QC's seam ratio from the render's sidecar (edge energy on the mask's border,
  output / source; 1 = no edge the source did not have).

Writes a dated subsection under `## face leak` in bench/results.md (or ``--results``).

    OMP_NUM_THREADS=1 python bench/face_leak.py [--before /tmp/old] [--max-frames 100]
        [--generators exemplar] [--results /tmp/x.md]
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
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from quality import LANGUAGES, analyse, load_cases  # bench/quality.py
from render import DATA, REPO, RESULTS, device_name, write_section  # bench/render.py

from lipdub.analysis.records import LEFT_EYE, RIGHT_EYE, FaceTrack
from lipdub.config.plan import load_plan
from lipdub.config.project import load_project
from lipdub.eval.qc import qc_path
from lipdub.media.read import open_video
from lipdub.plugin_manager import PluginManager

log = logging.getLogger("bench.face_leak")

OUT = REPO / "bench" / "out" / "face_leak"
FACE_ROOM = 0.2  # IOD beyond the landmarks' hull that still counts as the face.
TOML = """[project]
name = "face-leak-bench"
preset = "draft"

[settings]
codec = "ffv1"
container = ".mkv"
audio_fit = "pad-trim"
"""
ROWS = {"outside PSNR": ".2f", "leak px": ".0f", "reach": ".2f", "nose px": ".0f", "seam": ".3f"}


@dataclass(frozen=True)
class Clip:
    """One clip and the dub it gets."""

    key: str
    video: Path
    dub: Path
    language: str


def clips(wanted: list[str]) -> list[Clip]:
    """bench/quality.py's cases, then the `media` presenters (dubbed in the languages after)."""
    out = [Clip(c.key, c.video, c.dub, c.language) for c in load_cases([])]
    with open(DATA / "audio.tsv", newline="") as f:
        dubs = {r["language"]: DATA / r["file"] for r in csv.DictReader(f, delimiter="\t")}
    with open(DATA / "clips.tsv", newline="") as f:
        media = [r for r in csv.DictReader(f, delimiter="\t") if r["split"] == "media"]
    for i, r in enumerate(media):
        lang = LANGUAGES[i % len(LANGUAGES)]
        out.append(Clip(r["speaker"], DATA / r["file"], dubs[lang], lang))
    return [c for c in out if not wanted or c.key in wanted]


def write_project(root: Path, cases: list[Clip], generators: list[str], frames: int) -> None:
    """lipdub.toml and a shots.yaml with one cross-driven shot per clip × generator."""
    shots = []
    for c in cases:
        with open_video(c.video) as v:
            stop = min(frames, v.info.frame_count)
        for g in generators:
            output = f"renders/{g}/{c.key}.mkv"
            shots.append(
                {
                    "id": f"{c.key}.{g}",
                    "source": str(c.video),
                    "in": 0,
                    "out": stop,
                    "dubs": [{"name": "cross", "audio": str(c.dub), "output": output}],
                    "settings": {"generator": g},
                }
            )
    root.mkdir(parents=True, exist_ok=True)
    (root / "lipdub.toml").write_text(TOML)
    (root / "shots.yaml").write_text(yaml.safe_dump({"shots": shots}, sort_keys=False))


def render(root: Path, shot: str, code: Path | None) -> None:
    """Render one shot in a fresh process, with the lipdub package under ``code`` if given."""
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    cmd = [sys.executable, "-m", "lipdub", "render", str(root / "shots.yaml"), "--shot", shot]
    cmd += ["--json", "--force", "--project", str(root)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"render {shot} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")


def _hull(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape[:2], np.uint8)
    hull = cv2.convexHull(np.asarray(points, np.float32))[:, 0]
    cv2.fillConvexPoly(out, np.round(hull * 16).astype(np.int32), 1, shift=4)
    return out


def measure(source: Path, start: int, output: Path, track: FaceTrack) -> dict[str, Any]:
    """The rows of :data:`ROWS` for one output against its source."""
    sq, count, leak, nose, reach, frames = 0.0, 0, 0, 0, 0.0, 0
    with open_video(source) as a, open_video(output) as b:
        n = b.info.frame_count
        for i, (src, out) in enumerate(zip(a.frames(start, start + n), b.frames(), strict=True)):
            frames += 1
            diff = (out != src).any(-1)
            j = track.at(i)
            outside = np.ones(diff.shape, bool)
            if j is not None:
                lm = track.landmarks[j]
                iod = float(np.linalg.norm(lm[LEFT_EYE].mean(0) - lm[RIGHT_EYE].mean(0)))
                beyond = cv2.distanceTransform(1 - _hull(lm, src.shape), cv2.DIST_L2, 5) / iod
                outside = beyond > FACE_ROOM
                nose += int(diff[_hull(lm[27:36], src.shape) > 0].sum())
                if diff.any():
                    reach = max(reach, float(beyond[diff].max()))
            err = src[outside].astype(np.float64) - out[outside]
            sq += float(np.square(err).sum())
            count += err.size
            leak += int(diff[outside].sum())
    mse = sq / max(count, 1)
    side = qc_path(output)
    seam = json.loads(side.read_text()).get("seam_ratio") if side.is_file() else None
    return {
        "outside PSNR": math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse),
        "leak px": leak / max(frames, 1),
        "reach": reach,
        "nose px": nose / max(frames, 1),
        "seam": seam,
    }


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "—"
    return "inf" if value == math.inf else f"{value:{fmt}}"


def markdown(result: dict[str, Any]) -> str:
    """The subsection: setup, then one row per clip × generator × code, the measures across."""
    lines = [
        f"\n### {result['date']} — {result['device']}\n",
        f"`{result['command']}` ({result['wall_min']:.0f} min in all). First ≤ "
        f"{result['max_frames']} frames of each clip, cross-driven ({result['dubs']}), preset "
        "draft, lossless FFV1. The face = the hull of the source's tracked landmarks grown by "
        f"{FACE_ROOM} IOD; outside PSNR over every other pixel, all frames pooled (inf = not one "
        "changed); leak px and nose px = changed pixels per frame outside the face and in the "
        "nose's hull; reach = farthest changed pixel beyond the landmarks' hull (IOD); seam = "
        "QC's seam ratio. `before` = the code given to --before, `after` = this checkout.\n",
        "| clip | generator | code | " + " | ".join(ROWS) + " |",
        "| --- | --- | --- |" + " --- |" * len(ROWS),
    ]
    for r in result["rows"]:
        cells = [_cell(r.get(k), f) for k, f in ROWS.items()]
        lines.append(
            f"| {r['clip']} | `{r['generator']}` | {r['code']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generators", default="exemplar")
    parser.add_argument("--max-frames", type=int, default=100)
    parser.add_argument("--clips", default="", help="comma-separated clip keys (default: all)")
    parser.add_argument("--before", type=Path, help="a checkout whose lipdub renders `before`")
    parser.add_argument("--results", type=Path, default=RESULTS, help="markdown file to update")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    t0 = time.perf_counter()
    gens = [g for g in args.generators.split(",") if g]
    cases = clips([c for c in args.clips.split(",") if c])
    codes: dict[str, Path | None] = {"after": None}
    if args.before is not None:
        codes = {"before": args.before.resolve(), **codes}
    rows = []
    for label, code in codes.items():
        root = OUT / label
        write_project(root, cases, gens, args.max_frames)
        plan = load_plan(root / "shots.yaml", load_project(root), {})
        for shot in plan.shots:
            log.info("%s: render %s", label, shot.id)
            render(root, shot.id, code)
            track = analyse(shot, root, PluginManager(root))
            if track is None:
                log.warning("%s: no face track; not measured", shot.id)
                continue
            clip, gen = shot.id.rsplit(".", 1)
            row = measure(shot.source, shot.start, shot.dubs[0].output, track)
            rows.append({"clip": clip, "generator": gen, "code": label, **row})
    rows.sort(key=lambda r: (r["clip"], r["generator"], r["code"] != "before"))
    result = {
        "command": "python bench/face_leak.py " + shlex.join(sys.argv[1:]),
        "device": device_name("cpu"),
        "date": str(dt.date.today()),
        "max_frames": args.max_frames,
        "dubs": ", ".join(f"{c.key} {c.language}" for c in cases),
        "rows": rows,
        "wall_min": (time.perf_counter() - t0) / 60,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "face_leak.json").write_text(json.dumps(result, indent=1, default=str))
    text = markdown(result)
    write_section(args.results, "face leak", text, replace=text.strip().splitlines()[0])
    print(text)


if __name__ == "__main__":
    main()
