"""Analysis speed on this CPU: frames per second per face detector, on 1080p and 512² footage.

Analyses the first frames of the `media` clips (1080x1920) and of the 512x512 clips of
../shared/data with each detector (dlib-hog, dlib-cnn), default settings otherwise, no cache.
"fps" is the analysis pass itself (decode, cut detection, detection every 5th frame, landmarks
every frame, tracking, descriptors, smoothing); opening the file (lipdub.media.read's index
scan) is reported apart. The detector's own cost per call is timed on a few frames.
The numbers go into the "## analysis" section of bench/results.md (subsection "speed").

``--landmarkers`` instead times the two landmarkers (``mediapipe``, the default, and ``dlib68``)
at 1080p on every test clip: each clip's first frames, scaled to 1080 rows and centred on a
1920x1080 canvas, written once to a temporary MPEG-4 file; the whole analysis (decode, cuts,
detection, landmarks, tracking, descriptors) timed per frame with 1 and with 2 threads (OpenCV's
and the mesh runtime's), the landmarkers interleaved round by round so that load from other
processes on a shared machine falls on both alike; the median of the rounds is reported.

``--pipelines`` times the whole analysis at 1080p with the stage sets it has had: the one when
issue 25 was filed (dlib-hog + dlib68), the one before BlazeFace (dlib-hog + the mesh, two passes
on every face) and today's default (blazeface + the same mesh). The clips: the 1080p clips of
../shared/data as they are, and every test clip on a 1920x1080 canvas (as ``--landmarkers``). The
figure is process CPU time per frame (every thread of the process, the decoder's included: on a
shared machine wall time measures the neighbours), the file's opening scan included, the stages
built before the clock starts, stage sets interleaved round by round, the median of the rounds. One
thread for OpenCV (lipdub's own setting) and for the mesh runtime.

    python bench/analysis.py [--frames 150] [--cnn-frames 20]
    python bench/analysis.py --landmarkers [--frames 100] [--rounds 3]
    python bench/analysis.py --pipelines [--frames 100] [--rounds 2]
    PYTHONPATH=CHECKOUT python bench/analysis.py --whole-clips default|dlib68
    python bench/analysis.py --detectors

``--whole-clips`` prints (JSON) the CPU time per frame of the whole analysis of each 1080p clip of
../shared/data, whole, with the default stages of whichever lipdub is imported (or dlib-hog +
dlib68): run it with two checkouts in turn to compare commits.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from lipdub.analysis.detection import detect_in_frame, detection_scale
from lipdub.analysis.faces import Dlib68Landmarker, DlibFaceDetector
from lipdub.analysis.mesh import load_mesh_landmarker
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


def canvas_1080p(path: Path, frames: int, out: Path) -> int:
    """Write the first ``frames`` frames of ``path`` scaled to 1080 rows on a 1920x1080 black
    canvas to ``out`` (MPEG-4 part 2); returns the frames written."""
    with open_video(path) as video:
        fps = float(video.info.fps)
        writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, (1920, 1080))
        n = 0
        for frame in video.frames(0, min(frames, video.info.frame_count)):
            h, w = frame.shape[:2]
            s = min(1080 / h, 1920 / w)
            small = cv2.resize(frame, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)
            page = np.zeros((1080, 1920, 3), np.uint8)
            y, x = (1080 - small.shape[0]) // 2, (1920 - small.shape[1]) // 2
            page[y : y + small.shape[0], x : x + small.shape[1]] = small
            writer.write(cv2.cvtColor(page, cv2.COLOR_RGB2BGR))
            n += 1
        writer.release()
    return n


def landmarker_speed(frames: int, rounds: int) -> str:
    """ms per frame of the whole analysis at 1080p with each landmarker (see the docstring)."""
    with (DATA / "clips.tsv").open() as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r["split"] == "test"]
    names = ("mediapipe", "dlib68")
    ms: dict[tuple[str, int], list[float]] = {(n, t): [] for n in names for t in (1, 2)}
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for row in rows:
            src = Path(tmp) / f"{Path(row['file']).stem}.mp4"
            n = canvas_1080p(DATA / row["file"], frames, src)
            per: dict[tuple[str, int], list[float]] = {(m, t): [] for m in names for t in (1, 2)}
            for r in range(rounds):
                for threads in (1, 2):
                    cv2.setNumThreads(threads)
                    for name in names if r % 2 == 0 else names[::-1]:
                        lm = load_mesh_landmarker(threads) if name == "mediapipe" else None
                        stage = lm if lm is not None else Dlib68Landmarker()
                        result = analyze_shot(src, 0, n, stages={"landmarker": stage})
                        per[(name, threads)].append(1000 * result.seconds / n)
            cells = []
            for key, values in per.items():
                ms[key].append(float(np.median(values)))
                cells.append(f"{np.median(values):.1f}")
            lines.append(f"| {Path(row['file']).stem[:40]} | {n} | " + " | ".join(cells) + " |")
    cv2.setNumThreads(-1)
    mean = {k: float(np.mean(v)) for k, v in ms.items()}
    head = (
        "| clip (at 1920x1080) | frames | mediapipe 1 thread | mediapipe 2 | dlib68 1 thread "
        "| dlib68 2 |\n|---|---:|---:|---:|---:|---:|"
    )
    summary = (
        f"Mean over the clips, ms per frame: mediapipe {mean[('mediapipe', 1)]:.1f} (1 thread), "
        f"{mean[('mediapipe', 2)]:.1f} (2); dlib68 {mean[('dlib68', 1)]:.1f} (1 thread), "
        f"{mean[('dlib68', 2)]:.1f} (2): dlib68 / mediapipe = "
        f"{mean[('dlib68', 1)] / mean[('mediapipe', 1)]:.2f}x (1 thread), "
        f"{mean[('dlib68', 2)] / mean[('mediapipe', 2)]:.2f}x (2)."
    )
    return "\n".join([head, *lines, "", summary])


PIPELINES = ("dlib-hog + dlib68", "dlib-hog + mesh", "blazeface + mesh (default)")


def _pipeline(name: str) -> dict[str, object]:
    if name == PIPELINES[0]:
        return {"faces": DlibFaceDetector("hog"), "landmarker": Dlib68Landmarker()}
    if name == PIPELINES[1]:
        return {"faces": DlibFaceDetector("hog"), "landmarker": load_mesh_landmarker(follow=False)}
    from lipdub.analysis.blazeface import load_blazeface  # Here: older lipdubs lack it.

    return {"faces": load_blazeface(), "landmarker": load_mesh_landmarker()}


def pipeline_speed(frames: int, rounds: int) -> str:
    """CPU ms per frame of the whole analysis at 1080p per stage set (see the docstring)."""
    with (DATA / "clips.tsv").open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    native = [
        DATA / r["file"]
        for r in rows
        if max(int(r["width"]), int(r["height"])) == 1920
        and min(int(r["width"]), int(r["height"])) == 1080
    ]
    tests = [DATA / r["file"] for r in rows if r["split"] == "test"]
    cv2.setNumThreads(1)
    lines, per_set = [], {p: [] for p in PIPELINES}
    with tempfile.TemporaryDirectory() as tmp:
        sources = [(p, p.stem[:40], "native") for p in native]
        for p in tests:
            out = Path(tmp) / f"{p.stem}.mp4"
            canvas_1080p(p, frames, out)
            sources.append((out, p.stem[:40], "canvas"))
        for src, label, kind in sources:
            with open_video(src) as video:
                n = min(frames, video.info.frame_count)
                size = f"{video.info.width}x{video.info.height}"
            got: dict[str, list[float]] = {p: [] for p in PIPELINES}
            for r in range(rounds):
                for name in PIPELINES if r % 2 == 0 else PIPELINES[::-1]:
                    stages = _pipeline(name)
                    t0 = time.process_time()
                    analyze_shot(src, 0, n, stages=stages)
                    got[name].append(1000 * (time.process_time() - t0) / n)
            cells = []
            for name in PIPELINES:
                value = float(np.median(got[name]))
                per_set[name].append(value)
                cells.append(f"{value:.1f}")
            lines.append(f"| {label} ({kind}, {size}) | {n} | " + " | ".join(cells) + " |")
    mean = {p: float(np.mean(v)) for p, v in per_set.items()}
    base, before, now = (mean[p] for p in PIPELINES)
    head = (
        "| clip | frames | " + " | ".join(PIPELINES) + " |\n|---|---:|" + "---:|" * len(PIPELINES)
    )
    summary = (
        f"Mean CPU ms per frame: {PIPELINES[0]} {base:.1f}, {PIPELINES[1]} {before:.1f}, "
        f"{PIPELINES[2]} {now:.1f}: {base / now:.2f}x faster than when issue 25 was filed, "
        f"{before / now:.2f}x faster than the stage set before BlazeFace."
    )
    return "\n".join([head, *lines, "", summary])


def whole_clips(landmarker: str) -> str:
    """CPU ms per frame of the analysis of every 1080p clip of ../shared/data, whole, with the
    default stages of the lipdub that is imported (``landmarker`` "dlib68": HOG + dlib's 68, the
    stage set when issue 25 was filed). Prints JSON; to compare commits, run it with each
    checkout first on PYTHONPATH."""
    import json

    import lipdub
    from lipdub.analysis.shot_analysis import STAGE_NAMES, default_stages

    stages = _pipeline(PIPELINES[0]) if landmarker == "dlib68" else {}
    settings = AnalysisSettings()
    built = {**default_stages(settings, [n for n in STAGE_NAMES if n not in stages]), **stages}
    with (DATA / "clips.tsv").open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    ms = {}
    for r in rows:
        if sorted((int(r["width"]), int(r["height"]))) != [1080, 1920]:
            continue
        t0 = time.process_time()
        result = analyze_shot(DATA / r["file"], 0, None, stages=built)
        ms[Path(r["file"]).stem] = 1000 * (time.process_time() - t0) / (result.stop - result.start)
    names = {
        k: str(getattr(v, "name", "")) for k, v in built.items() if k in ("faces", "landmarker")
    }
    return json.dumps({"lipdub": lipdub.__file__, "stages": names, "cpu_ms_per_frame": ms})


def detector_agreement(samples: int) -> str:
    """BlazeFace against dlib's HOG on ``samples`` evenly spaced frames of every clip of
    ../shared/data: frames each finds a face on, the box sizes' ratio and centre offset (in HOG
    box sides) where both do, CPU ms per call (HOG at the analysis scale, BlazeFace's two
    passes on the frame as it is)."""
    from lipdub.analysis.blazeface import load_blazeface

    blaze, hog, settings = load_blazeface(), DlibFaceDetector("hog"), AnalysisSettings()
    with (DATA / "clips.tsv").open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    found = {"blazeface": 0, "dlib-hog": 0}
    frames, geometry = 0, []
    extra = {"blazeface": 0, "dlib-hog": 0}
    cpu = {"blazeface": 0.0, "dlib-hog": 0.0}
    for r in rows:
        try:
            video = open_video(DATA / r["file"])
        except Exception:  # A variable-rate clip the analysis refuses without conform.
            continue
        with video:
            n = video.info.frame_count
            step = max(1, n // samples)
            for i, frame in enumerate(video.frames(0, n)):
                if i % step:
                    continue
                t0 = time.process_time()
                b = blaze.detect(frame)
                t1 = time.process_time()
                h = detect_in_frame(frame, hog, settings)
                cpu["blazeface"] += t1 - t0
                cpu["dlib-hog"] += time.process_time() - t1
                frames += 1
                found["blazeface"] += bool(b)
                found["dlib-hog"] += bool(h)
                extra["blazeface"] += max(0, len(b) - 1)
                extra["dlib-hog"] += max(0, len(h) - 1)
                if b and h:
                    a, c = b[0][0], h[0][0]
                    side = c[2] - c[0]
                    offset = np.hypot(*((a[:2] + a[2:]) / 2 - (c[:2] + c[2:]) / 2)) / side
                    geometry.append(((a[2] - a[0]) / side, offset))
    g = np.asarray(geometry)
    return (
        f"{frames} frames ({samples} per clip, every clip of ../shared/data the analysis opens "
        f"without conforming): a face found on {found['blazeface']} by blazeface, "
        f"{found['dlib-hog']} by dlib-hog; more than one face on {extra['blazeface']} and "
        f"{extra['dlib-hog']} (every clip holds one person). Where both found one, blazeface's "
        f"box is {np.median(g[:, 0]):.2f}x HOG's side (10-90%: {np.percentile(g[:, 0], 10):.2f}-"
        f"{np.percentile(g[:, 0], 90):.2f}), its centre {np.median(g[:, 1]):.3f} HOG sides away "
        f"(90%: {np.percentile(g[:, 1], 90):.3f}). CPU per call: blazeface "
        f"{1000 * cpu['blazeface'] / frames:.1f} ms, "
        f"dlib-hog {1000 * cpu['dlib-hog'] / frames:.1f} ms."
    )


def main() -> None:
    """Run the speed benchmark and record it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150, help="frames per clip (HOG)")
    parser.add_argument("--cnn-frames", type=int, default=20, help="frames per clip (CNN)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--landmarkers", action="store_true", help="time the two landmarkers")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (landmarkers)")
    parser.add_argument("--pipelines", action="store_true", help="time the analysis stage sets")
    parser.add_argument("--detectors", action="store_true", help="blazeface against dlib-hog")
    parser.add_argument(
        "--whole-clips",
        choices=["default", "dlib68"],
        help="print CPU ms/frame of the imported lipdub's analysis on the whole 1080p clips",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if not DATA.is_dir():
        sys.exit(f"{DATA}: shared test media not found")
    settings = AnalysisSettings()
    if args.whole_clips:
        cv2.setNumThreads(1)
        sys.stdout.write(whole_clips(args.whole_clips) + "\n")
        return
    modes = {  # flag: (subsection title, what it measures)
        "detectors": ("detectors (bench/analysis.py --detectors)", lambda: detector_agreement(6)),
        "pipelines": (
            "stage sets at 1080p (bench/analysis.py --pipelines)",
            lambda: pipeline_speed(args.frames, args.rounds),
        ),
        "landmarkers": (
            "landmarkers at 1080p (bench/analysis.py --landmarkers)",
            lambda: landmarker_speed(args.frames, args.rounds),
        ),
    }
    for flag, (title, measure) in modes.items():
        if getattr(args, flag):
            if flag == "detectors":
                cv2.setNumThreads(1)
            text = f"{device_line()}\n\n{measure()}"
            sys.stdout.write(text + "\n")
            if not args.no_write:
                write_subsection(title, text)
            return
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
