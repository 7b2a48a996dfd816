"""Face analysis quality on every train/test clip of ../shared/data: detection rate and jitter.

For each clip the whole file is analysed with the default settings (dlib-hog) and the table
reports: frames, tracks, the share of frames with a tracked face, and for the longest track the
median frame-to-frame displacement of the eye corners in % of the inter-ocular distance, raw and
smoothed, plus the median second difference ("shake": displacement not explained by steady motion)
raw and smoothed. The table is printed and written to the "## analysis" section of
bench/results.md (subsection "quality").

    python bench/analysis_quality.py [--workers 2] [--split train,test] [--limit N]

``--landmarkers`` instead compares the two landmarkers on every test clip (``bench/lips.py``:
lip jitter on still frames, inner-lip gap on mouths labelled closed / open, agreement in IOD) and
writes the subsection "landmarkers".

    python bench/analysis_quality.py --landmarkers [--cache DIR]
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from analysis import DATA, device_line, write_subsection
from lips import measure as measure_lips
from lips import table as lips_table
from lips import test_rows

from lipdub.analysis.identity import actor_distances, identify
from lipdub.analysis.records import UNKNOWN
from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.analysis.smoothing import jitter, shake

log = logging.getLogger("bench.analysis_quality")


def measure(row: dict[str, str]) -> dict[str, object]:
    """Analyse one clip and return its row of the table."""
    path = DATA / row["file"]
    t0 = time.perf_counter()
    # conform: one clip is variable-frame-rate; read it onto its grid as a render would.
    result = analyze_shot(path, conform=True)
    seconds = time.perf_counter() - t0
    sys.stderr.write(f"{path.name}: {result.coverage:.3f} in {seconds:.1f} s\n")
    out: dict[str, object] = {
        "clip": Path(row["file"]).stem[:48],
        "split": row["split"],
        "size": f"{row['width']}x{row['height']}",
        "frames": result.frame_count,
        "tracks": len(result.tracks),
        "detected": result.coverage,
        "fps": result.frame_count / seconds,
    }
    if result.tracks:
        t = max(result.tracks, key=len)
        out["speaker"] = row["speaker"]
        out["descriptors"] = t.descriptors
        out["disp_raw"] = float(np.median(jitter(t.raw_landmarks)))
        out["disp_smooth"] = float(np.median(jitter(t.landmarks)))
        out["shake_raw"] = float(np.median(shake(t.raw_landmarks)))
        out["shake_smooth"] = float(np.median(shake(t.landmarks)))
    return out


def table(rows: list[dict[str, object]]) -> str:
    """Markdown table of the measured rows, with a summary line."""
    head = (
        "| clip | split | size | frames | tracks | faces found | disp raw | disp smooth "
        "| shake raw | shake smooth | fps |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['clip']} | {r['split']} | {r['size']} | {r['frames']} | {r['tracks']} "
            f"| {100 * r['detected']:.1f}% | {r.get('disp_raw', float('nan')):.2f} "
            f"| {r.get('disp_smooth', float('nan')):.2f} | {r.get('shake_raw', float('nan')):.2f} "
            f"| {r.get('shake_smooth', float('nan')):.2f} | {r['fps']:.0f} |"
        )
    det = np.array([r["detected"] for r in rows])
    smooth = np.array([r.get("disp_smooth", np.nan) for r in rows])
    shk = np.array([r.get("shake_smooth", np.nan) for r in rows])
    lines.append(
        f"\n{len(rows)} clips; faces found on {100 * det.min():.1f}% of frames at worst "
        f"(mean {100 * det.mean():.2f}%); median eye-corner displacement (smoothed) "
        f"{np.nanmedian(smooth):.2f}% IOD (worst clip {np.nanmax(smooth):.2f}%), shake "
        f"{np.nanmedian(shk):.2f}% (worst {np.nanmax(shk):.2f}%). disp = frame-to-frame "
        f"displacement of the eye corners, shake = its second difference, both median % IOD."
    )
    return "\n".join(lines)


def identity_table(rows: list[dict[str, object]], threshold: float = 0.6) -> str:
    """Confusion of the test clips: each clip's track against every test speaker's gallery.

    A speaker's gallery is the descriptors of their *other* test clips, so a speaker with one
    clip has no gallery when their own clip is the query: that row must come out "unknown".
    """
    tests = [r for r in rows if r["split"] == "test" and "descriptors" in r]
    speakers = sorted({str(r["speaker"]) for r in tests})
    head = "| query clip (speaker) | " + " | ".join(speakers) + " | decision |"
    lines = [head, "|---|" + "---:|" * len(speakers) + "---|"]
    right = 0
    for q in tests:
        gallery = {
            s: np.concatenate([r["descriptors"] for r in tests if r["speaker"] == s and r is not q])
            for s in speakers
            if any(r["speaker"] == s and r is not q for r in tests)
        }
        dists = actor_distances(q["descriptors"], gallery)
        name, _ = identify(q["descriptors"], gallery, threshold)
        own = q["speaker"] in gallery
        ok = name == q["speaker"] if own else name == UNKNOWN
        right += ok
        cells = [f"{dists[s]:.2f}" if s in dists else "-" for s in speakers]
        lines.append(
            f"| {q['clip'][:40]} ({q['speaker']}) | " + " | ".join(cells) + f" | {name} "
            f"{'ok' if ok else 'WRONG'} |"
        )
    lines.append(
        f"\n{right}/{len(tests)} decisions right at threshold {threshold} (median distance of the "
        f"track's descriptors to the nearest reference; '-' = no other clip of that speaker)."
    )
    return "\n".join(lines)


def main() -> None:
    """Measure every selected clip and record the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--split", default="train,test")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--landmarkers", action="store_true", help="compare the landmarkers")
    parser.add_argument("--cache", type=Path, help="analysis cache folder (--landmarkers)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if not DATA.is_dir():
        sys.exit(f"{DATA}: shared test media not found")
    if args.landmarkers:
        text = lips_table([measure_lips(r, args.cache) for r in test_rows()])
        sys.stdout.write(text + "\n")
        if not args.no_write:
            title = "landmarkers: lips, closed vs open, agreement (bench/analysis_quality.py)"
            write_subsection(title, f"{device_line()}\n\n{text}")
        return
    with (DATA / "clips.tsv").open() as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["split"] in args.split.split(",")]
    if args.limit:
        rows = rows[: args.limit]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(measure, rows))
    text = table(results) + "\n\nIdentity on the test split:\n\n" + identity_table(results)
    sys.stdout.write(text + "\n")
    if not args.no_write:
        write_subsection("quality (bench/analysis_quality.py)", f"{device_line()}\n\n{text}")


if __name__ == "__main__":
    main()
