"""The two landmarkers side by side on the test clips: still lips, closed vs open, agreement.

For each clip both landmarkers (``mediapipe``, the default, and ``dlib68``) analyse the whole clip
with otherwise default settings; the longest track of each is compared frame by frame:

- **still jitter**: on the clip's stillest frames (the 20% whose mouth region changes least from
  the previous frame, in grey levels: a measure of the pixels, not of either landmarker), the
  median frame-to-frame displacement of the 20 mouth points (48..67, raw, before smoothing), in %
  of the IOD. A landmarker that reads the same lips on the same pixels scores low.
- **closed vs open**: the inner-lip gap (``lipdub.analysis.masks.mouth_opening``, in IOD) on
  frames labelled by eye as visibly closed or open in ``bench/mouth_labels.tsv`` (labels made
  from contact sheets this script draws with ``--sheets DIR``). Reported: the median gap of each
  class, the share of closed frames read under 0.02 IOD, and the AUC of the gap for open vs closed
  (1 = every open frame reads a wider gap than every closed one).
- **agreement**: the median distance between the two landmarkers' mouth points, in IOD, per
  group (outer lips 48..59, inner lips 60..67), and of the jaw (0..16) and eyes (36..47).

    python bench/analysis_quality.py --landmarkers   (writes the table)
    python bench/lips.py --sheets /tmp/sheets          (contact sheets for labelling)
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from analysis import DATA

from lipdub.analysis.faces import Dlib68Landmarker
from lipdub.analysis.masks import mouth_opening
from lipdub.analysis.mesh import load_mesh_landmarker
from lipdub.analysis.records import FaceTrack
from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.analysis.smoothing import inter_ocular
from lipdub.media.read import open_video

LABELS = Path(__file__).resolve().parent / "mouth_labels.tsv"
#: The landmarkers compared, by stage choice name.
NAMES = ("mediapipe", "dlib68")
#: Share of a clip's frames counted as still (those whose mouth region changes least).
STILL_SHARE = 0.2
#: A closed mouth "reads closed" when its inner-lip gap is under this many IODs.
CLOSED_GAP = 0.02
GROUPS = {"outer lips": slice(48, 60), "inner lips": slice(60, 68), "jaw": slice(0, 17),
          "eyes": slice(36, 48)}  # fmt: skip


def build(name: str) -> object:
    """The landmarker stage object ``name``."""
    return load_mesh_landmarker(1) if name == "mediapipe" else Dlib68Landmarker()


def test_rows() -> list[dict[str, str]]:
    """The test split's rows of clips.tsv."""
    with (DATA / "clips.tsv").open() as f:
        return [r for r in csv.DictReader(f, delimiter="\t") if r["split"] == "test"]


def tracks(path: Path, cache: Path | None) -> dict[str, FaceTrack]:
    """Each landmarker's longest track of the clip (frames from the clip's start)."""
    out = {}
    for name in NAMES:
        a = analyze_shot(path, stages={"landmarker": build(name)}, cache_dir=cache, conform=True)
        out[name] = max(a.tracks, key=len)
    return out


def common(ts: dict[str, FaceTrack]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The frames both tracks hold, and each track's raw landmarks on them."""
    a, b = (t.frames for t in ts.values())
    frames = np.intersect1d(a, b)
    out = {}
    for name, t in ts.items():
        assert t.raw_landmarks is not None, "the tracker keeps the raw landmarks"
        out[name] = t.raw_landmarks[frames - t.frames[0]]
    return frames, out


def mouth_change(path: Path, frames: np.ndarray, lms: dict[str, np.ndarray]) -> np.ndarray:
    """Per frame, the mean absolute grey change of the mouth region from the frame before
    (region: both landmarkers' mouth points, their box grown by 0.3 IOD); NaN on the first."""
    mean = np.mean([lm for lm in lms.values()], axis=0)
    iod = inter_ocular(mean)
    want = {int(f): k for k, f in enumerate(frames)}
    out = np.full(len(frames), np.nan)
    prev = None
    with open_video(path, conform=True) as video:
        for i, frame in enumerate(video.frames(0, int(frames[-1]) + 1)):
            grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
            k = want.get(i)
            if k is not None and prev is not None and want.get(i - 1) is not None:
                pad = 0.3 * iod[k]
                (x0, y0), (x1, y1) = mean[k, 48:68].min(0) - pad, mean[k, 48:68].max(0) + pad
                y0, y1 = max(int(y0), 0), min(int(y1) + 1, grey.shape[0])
                x0, x1 = max(int(x0), 0), min(int(x1) + 1, grey.shape[1])
                out[k] = float(np.abs(grey[y0:y1, x0:x1] - prev[y0:y1, x0:x1]).mean())
            prev = grey
    return out


def still_jitter(lm: np.ndarray, still: np.ndarray) -> float:
    """Median displacement of the mouth points from the frame before, % IOD, on ``still``
    frames (whose frame before is also held)."""
    step = np.linalg.norm(np.diff(lm[:, 48:68], axis=0), axis=2).mean(axis=1)
    iod = inter_ocular(lm)[1:]
    return float(100 * np.median((step / iod)[still[1:]]))


def auc(closed: np.ndarray, opened: np.ndarray) -> float:
    """P(gap of an open frame > gap of a closed one), ties counted half (Mann-Whitney)."""
    if len(closed) == 0 or len(opened) == 0:
        return float("nan")
    diff = opened[:, None] - closed[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def labels() -> dict[tuple[str, int], str]:
    """(clip file, frame) -> "closed" / "open" from bench/mouth_labels.tsv."""
    if not LABELS.is_file():
        return {}
    with LABELS.open() as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if not r["clip"].startswith("#")]
    return {(r["clip"], int(r["frame"])): r["label"] for r in rows}


def sheets(folder: Path, cache: Path | None, per_side: int = 6) -> None:
    """Contact sheets of candidate mouths per clip (the narrowest and widest outer-lip
    openings by either landmarker, 5+ frames apart), numbered by frame, to be labelled by eye."""
    folder.mkdir(parents=True, exist_ok=True)
    for row in test_rows():
        path = DATA / row["file"]
        frames, lms = common(tracks(path, cache))
        mean = np.mean(list(lms.values()), axis=0)
        height = np.linalg.norm(mean[:, 57] - mean[:, 51], axis=1) / inter_ocular(mean)
        picks: list[int] = []
        for order in (np.argsort(height), np.argsort(-height)):
            got = 0
            for k in order:
                if got == per_side:
                    break
                if all(abs(int(k) - p) >= 5 for p in picks):
                    picks.append(int(k))
                    got += 1
        crops = []
        with open_video(path, conform=True) as video:
            for i, frame in enumerate(video.frames(0, int(frames[max(picks)]) + 1)):
                for k in picks:
                    if int(frames[k]) == i:
                        c = mean[k, 48:68].mean(0)
                        half = int(0.9 * inter_ocular(mean[k]))
                        x0, y0 = int(c[0]) - half, int(c[1]) - half
                        crop = frame[max(y0, 0) : y0 + 2 * half, max(x0, 0) : x0 + 2 * half]
                        crop = cv2.resize(crop, (192, 192))
                        cv2.putText(crop, str(i), (4, 20), 0, 0.6, (255, 255, 0), 2)
                        crops.append(crop)
        grid = np.vstack([np.hstack(crops[r : r + 6]) for r in range(0, len(crops), 6)])
        out = folder / f"{Path(row['file']).stem}.png"
        cv2.imwrite(str(out), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        sys.stderr.write(f"{out}\n")


def measure(row: dict[str, str], cache: Path | None) -> dict[str, Any]:
    """One clip's numbers for both landmarkers (see the module docstring)."""
    path = DATA / row["file"]
    ts = tracks(path, cache)
    frames, lms = common(ts)
    change = mouth_change(path, frames, lms)
    still = change <= np.nanquantile(change, STILL_SHARE)
    marks = labels()
    out: dict[str, Any] = {"clip": Path(row["file"]).stem[:40], "frames": len(frames)}
    for name, lm in lms.items():
        gaps = np.array([mouth_opening(x) for x in lm])
        for label in ("closed", "open"):
            ks = [k for k, f in enumerate(frames) if marks.get((row["file"], int(f))) == label]
            out[f"{name} {label}"] = gaps[ks]
        out[f"{name} jitter"] = still_jitter(lm, still)
    mesh, dlib = lms["mediapipe"], lms["dlib68"]
    iod = inter_ocular(dlib)
    for group, sl in GROUPS.items():
        d = np.linalg.norm(mesh[:, sl] - dlib[:, sl], axis=2).mean(axis=1) / iod
        out[f"agree {group}"] = float(np.median(d))
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table and the pooled closed/open separation."""
    head = (
        "| clip | frames | still jitter mesh | still jitter dlib | closed: n, gap mesh / dlib "
        "| open: n, gap mesh / dlib | agree outer / inner lips | agree jaw / eyes |\n"
        "|---|---:|---:|---:|---|---|---|---|"
    )
    lines = [head]

    def med(a: object) -> str:
        a = np.asarray(a)
        return f"{np.median(a):.3f}" if a.size else "-"

    for r in rows:
        lines.append(
            f"| {r['clip']} | {r['frames']} | {r['mediapipe jitter']:.2f}% "
            f"| {r['dlib68 jitter']:.2f}% "
            f"| {len(r['mediapipe closed'])}: {med(r['mediapipe closed'])} "
            f"/ {med(r['dlib68 closed'])} "
            f"| {len(r['mediapipe open'])}: {med(r['mediapipe open'])} / {med(r['dlib68 open'])} "
            f"| {r['agree outer lips']:.3f} / {r['agree inner lips']:.3f} "
            f"| {r['agree jaw']:.3f} / {r['agree eyes']:.3f} |"
        )
    lines.append("")
    for name in NAMES:
        closed = np.concatenate([r[f"{name} closed"] for r in rows])
        opened = np.concatenate([r[f"{name} open"] for r in rows])
        jit = np.array([r[f"{name} jitter"] for r in rows])
        lines.append(
            f"- **{name}**: closed mouths ({len(closed)}) read a median inner-lip gap of "
            f"{np.median(closed):.4f} IOD (90th percentile {np.quantile(closed, 0.9):.4f}; "
            f"{100 * (closed < CLOSED_GAP).mean():.0f}% under {CLOSED_GAP}), open ones "
            f"({len(opened)}) {np.median(opened):.3f} (10th percentile "
            f"{np.quantile(opened, 0.1):.3f}); AUC open vs closed {auc(closed, opened):.3f}"
            f"; still-frame lip jitter median {np.median(jit):.2f}% IOD (worst clip "
            f"{jit.max():.2f}%)."
        )
    return "\n".join(lines)


def main() -> None:
    """Draw the labelling sheets (``--sheets``) or print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sheets", type=Path, help="write contact sheets here and stop")
    parser.add_argument("--cache", type=Path, help="analysis cache folder (re-runs are quick)")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA}: shared test media not found")
    if args.sheets:
        sheets(args.sheets, args.cache)
        return
    sys.stdout.write(table([measure(r, args.cache) for r in test_rows()]) + "\n")


if __name__ == "__main__":
    main()
