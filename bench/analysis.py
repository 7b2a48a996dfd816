"""Analysis speed on this CPU: frames per second per face detector, on 1080p and 512² footage.

Analyses the first frames of the `media` clips (1080x1920) and of the 512x512 clips of
../shared/data with each detector (dlib-hog, dlib-cnn), default settings otherwise, no cache.
"fps" is the analysis pass itself (decode, cut detection, detection every 5th frame, landmarks
every frame, tracking, descriptors, smoothing); opening the file (lipdub.media.read's index
scan) is reported apart. The detector's own cost per call is timed on a few frames.
The numbers go into the "## analysis" section of bench/results.md (subsection "speed").

    python bench/analysis.py [--frames 150] [--cnn-frames 20]
"""

from __future__ import annotations

import argparse
import csv
import datetime
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np

from lipdub.analysis.detection import detect_in_frame, detection_scale
from lipdub.analysis.faces import DlibFaceDetector
from lipdub.analysis.settings import AnalysisSettings
from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.media.read import open_video

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"
RESULTS = ROOT / "bench" / "results.md"
SECTION = "## analysis"


def device_line() -> str:
    """CPU model, core count, Python and date, for the results file."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"Device: {model}, {cores} cores available; Python {platform.python_version()}; "
        f"{datetime.date.today().isoformat()}"
    )


def write_subsection(title: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or add) ``### title`` inside the ``## analysis`` section of the results file.

    Other benchmarks own the other ``##`` sections; they are left as they are.
    """
    text = path.read_text() if path.is_file() else "# Benchmark results\n"
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.strip() == SECTION), None)
    if start is None:
        lines += ["", SECTION, ""]
        start = len(lines) - 2
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    section = lines[start + 1 : end]
    head = f"### {title}"
    sub = next((i for i, ln in enumerate(section) if ln.strip() == head), None)
    block = [head, "", *body.splitlines(), ""]
    if sub is None:
        section = [*section, *block] if section and section[-1] == "" else [*section, "", *block]
    else:
        sub_end = next(
            (i for i in range(sub + 1, len(section)) if section[i].startswith("### ")),
            len(section),
        )
        section = section[:sub] + block + section[sub_end:]
    out = lines[: start + 1] + section + lines[end:]
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(out).rstrip() + "\n")
    tmp.replace(path)


def clips(kind: str) -> list[Path]:
    """The 1080p `media` clips or the 512x512 clips."""
    with (DATA / "clips.tsv").open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if kind == "1080p":
        return [DATA / r["file"] for r in rows if r["split"] == "media"]
    return [DATA / r["file"] for r in rows if r["width"] == "512" and r["height"] == "512"]


def detector_ms(path: Path, method: str, settings: AnalysisSettings, calls: int = 3) -> float:
    """Mean wall time of one detector call at the analysis scale, in ms."""
    det = DlibFaceDetector(method)
    with open_video(path) as video:
        frame = next(video.frames(0, 1))
    detect_in_frame(frame, det, settings)  # Warm-up.
    t0 = time.perf_counter()
    for _ in range(calls):
        detect_in_frame(frame, det, settings)
    return 1000 * (time.perf_counter() - t0) / calls


def run(kind: str, method: str, frames: int, settings: AnalysisSettings) -> str:
    """Benchmark one footage kind with one detector; returns a table row."""
    fps, opens, det_ms, scale_txt = [], [], [], ""
    for path in clips(kind):
        with open_video(path) as video:
            n = min(frames, video.info.frame_count)
            w, h = video.info.width, video.info.height
        t0 = time.perf_counter()
        result = analyze_shot(path, 0, n, stages={"faces": DlibFaceDetector(method)})
        total = time.perf_counter() - t0
        fps.append(n / result.seconds)
        opens.append(total - result.seconds)
        det_ms.append(detector_ms(path, method, settings, 1 if method == "cnn" else 3))
        s = detection_scale(w, h, settings) * min(1.0, DlibFaceDetector(method).window_px / 80)
        scale_txt = f"{round(w * s)}x{round(h * s)}"
    return (
        f"| {kind} ({len(fps)} clips) | dlib-{method} | {frames} | {np.mean(fps):.1f} "
        f"| {np.mean(det_ms):.0f} ({scale_txt}) | {np.mean(opens):.1f} |"
    )


def main() -> None:
    """Run the speed benchmark and record it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150, help="frames per clip (HOG)")
    parser.add_argument("--cnn-frames", type=int, default=20, help="frames per clip (CNN)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not DATA.is_dir():
        sys.exit(f"{DATA}: shared test media not found")
    settings = AnalysisSettings()
    rows = [
        run("1080p", "hog", args.frames, settings),
        run("512x512", "hog", args.frames, settings),
        run("1080p", "cnn", args.cnn_frames, settings),
        run("512x512", "cnn", args.cnn_frames, settings),
    ]
    text = "\n".join(
        [
            device_line(),
            "",
            f"Default settings: detector every {settings.detect_every} frames on frames resized "
            f"to at most {settings.detect_max_side} px, landmarks every frame, one process.",
            "",
            "| footage | detector | frames/clip | analysis fps | detector ms/call (input) "
            "| file open s |",
            "|---|---|---:|---:|---:|---:|",
            *rows,
        ]
    )
    sys.stdout.write(text + "\n")
    if not args.no_write:
        write_subsection("speed (bench/analysis.py)", text)


if __name__ == "__main__":
    main()
