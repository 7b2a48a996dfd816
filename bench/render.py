"""End-to-end render benchmark: frames per second and peak memory on full-HD footage.

Renders the 1080×1920 `media` clips of ../shared/data (real presenters) through the whole
pipeline — decode, analysis, generation, paste-back, encode, dub mux, QC — once over the first
half of the clip and once over all of it, each in a fresh process, and records wall time, frames
per second, real-time factor and peak RSS. Equal peak RSS for both lengths shows that memory does
not grow with shot length. Each row also gets the render's CPU seconds (the child's user + system
time: a figure that holds on a loaded machine, where wall time does not), the load average before
and after (``/proc/loadavg``), and a per-stage breakdown from the job report's ``timing``:
analysis, generation, the encode pass's decode / composite / encode stages (busy, CPU of their
own threads, time waiting on their queues) and QC. With ``--jobs N`` both shots also render in
one ``lipdub render --jobs N`` against one after the other. Appends a section to
bench/results.md.

    python bench/render.py [--generator stylesync --weights random-init] [--device cpu]
    python bench/render.py --generator exemplar      # (or passthrough): no weights by default
    python bench/render.py --generator exemplar --serial   # LIPDUB_SERIAL_RENDER=1, for reference
    python bench/render.py --generator exemplar --jobs 2   # and both shots at once
    python bench/render.py --generator exemplar --clip long.mp4 --lengths 250,2500 \
        --dub long.wav                                     # memory against shot length
    python bench/render.py --generator exemplar --clip uhd.mp4 --preset broadcast

``--lengths`` renders shots of those frame counts (from frame 0) instead of the half and the whole
clip; ``--dub`` dubs with a WAV (padded or trimmed to each shot) instead of a synthesized line
(which is shorter than a long shot: the rest would rest on silence); ``--preset`` picks the
project's preset (draft: H.264; broadcast: ProRes 422 HQ). A note under the table gives each
row's growth in peak RSS over the first.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results.md"


def cpu_name() -> str:
    """The CPU model, from /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def device_name(device: str) -> str:
    """Human name of the device the render runs on."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(0)
    return f"{cpu_name()} ({len(__import__('os').sched_getaffinity(0))} cores)"


def write_section(path: Path, section: str, text: str, replace: str | None = None) -> None:
    """Append ``text`` at the end of the ``## section`` of a results file (both made when
    missing); with ``replace``, first drop the subsection (``### ...``) that starts with it."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    marker = f"\n## {section}\n"
    if marker not in old:
        old = old.rstrip("\n") + "\n" + marker
    start = old.index(marker) + 1
    end = old.find("\n## ", start)
    end = len(old) if end < 0 else end
    body = old[start:end]
    at = body.find(replace) if replace else -1
    if at >= 0:
        after = body.find("\n### ", at + len(replace))
        body = body[:at] + (body[after + 1 :] if after >= 0 else "")
    path.write_text(old[:start] + body.rstrip("\n") + "\n" + text + old[end:])


_PEAK_WRAPPER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[1:])\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print('peak_kb', u.ru_maxrss, u.ru_utime + u.ru_stime, file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def load_average() -> float:
    """The 1-minute load average (what `uptime` shows first)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def render_once(
    project: Path, shots: list[str], args: argparse.Namespace, jobs: int | None = None
) -> dict[str, Any]:
    """Render shots in a child process; wall time, the child's peak RSS and CPU seconds, the
    load average around it, and each shot's ``finished`` report."""
    cmd = [sys.executable, "-m", "lipdub", "render", str(project / "shots.yaml")]
    for shot in shots:
        cmd += ["--shot", shot]
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    cmd += [
        "--json",
        "--force",
        "--device",
        args.device,
        "--generator",
        args.generator,
    ]
    if args.weights:  # None or "": the generator's own default (exemplar, passthrough).
        cmd += ["--weights", args.weights]
    # A fresh wrapper per run, so RUSAGE_CHILDREN is this render's peak alone.
    wrapped = [sys.executable, "-c", _PEAK_WRAPPER, *cmd]
    env = {**os.environ, "LIPDUB_SERIAL_RENDER": "1"} if args.serial else None
    load0 = load_average()
    t0 = time.perf_counter()
    proc = subprocess.run(wrapped, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"render failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    _, peak_kb, cpu = proc.stderr.strip().splitlines()[-1].split()
    finished = [json.loads(x) for x in proc.stdout.splitlines() if '"finished"' in x]
    return {
        "wall": wall,
        "cpu": float(cpu),
        "peak_mb": int(peak_kb) / 1024,
        "load": (load0, load_average()),
        "reports": {e["job"]: e["data"] for e in finished},
    }


def stage_rows(shot: str, report: dict[str, Any]) -> list[str]:
    """Per-stage table rows of one shot's report (its first dub)."""
    timing = report.get("timing", {})
    dubs = [v for k, v in timing.items() if isinstance(v, dict) and "encode_pass" in v]
    rows = []
    if "analysis" in timing:
        a = timing["analysis"]
        rows.append(
            f"| {shot} | analysis (with the first pass) | {a['wall_s']:.2f} | "
            f"{a['process_cpu_s']:.2f} | | |{_rss(a)}"
        )
    if "first_pass" in timing:
        f = timing["first_pass"]
        rows.append(
            f"| {shot} | · first pass (bank cut) | {f['wall_s']:.2f} | "
            f"{f['process_cpu_s']:.2f} | | |{_rss(f)}"
        )
    if not dubs:
        return rows
    dub = dubs[0]
    if "generation" in dub:
        g = dub["generation"]
        rows.append(
            f"| {shot} | generation | {g['wall_s']:.2f} | {g['process_cpu_s']:.2f} | | |{_rss(g)}"
        )
    enc = dub["encode_pass"]
    rows.append(
        f"| {shot} | encode pass ({enc['workers']} paste thread(s), "
        f"{enc['untouched_frames']} frames untouched) | {enc['wall_s']:.2f} | "
        f"{enc['process_cpu_s']:.2f} | | |{_rss(enc)}"
    )
    for stage in ("decode", "composite", "encode"):
        c = enc[stage]
        rows.append(
            f"| {shot} | · {stage} | {c['busy_s']:.2f} | {c['cpu_s']:.2f} | "
            f"{c['wait_in_s']:.2f} | {c['wait_out_s']:.2f} | |"
        )
    if "qc" in dub:
        q = dub["qc"]
        rows.append(f"| {shot} | qc | {q['wall_s']:.2f} | {q['process_cpu_s']:.2f} | | |{_rss(q)}")
    return rows


def _rss(stage: dict[str, Any]) -> str:
    """The peak RSS column: the process's peak so far at the stage's end, MB."""
    peak = stage.get("peak_rss_mb")
    return f" {peak:.0f} |" if peak is not None else " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default="stylesync", help="stylesync, exemplar, ...")
    parser.add_argument(
        "--weights",
        default=None,
        help="checkpoint name; random-init = untrained (same compute), the default for "
        "stylesync; other generators get none unless given",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clip", default=None, help="video to use (default: first media clip)")
    parser.add_argument("--frames", type=int, default=None, help="cap on the frames rendered")
    parser.add_argument(
        "--lengths", default=None, help="shot lengths in frames, comma-separated (default: half "
        "and all of the clip)"
    )  # fmt: skip
    parser.add_argument("--dub", default=None, help="dub WAV (default: a synthesized line)")
    parser.add_argument("--preset", default="draft", help="draft, broadcast or feature")
    parser.add_argument(
        "--serial", action="store_true", help="LIPDUB_SERIAL_RENDER=1: the encode pass unthreaded"
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="also render both shots at once with --jobs N"
    )
    args = parser.parse_args()
    if args.weights is None and args.generator == "stylesync":
        args.weights = "random-init"
    if args.clip:
        clip = Path(args.clip)
    else:
        if not (DATA / "clips.tsv").is_file():
            raise SystemExit(f"{DATA} is absent: pass --clip")
        with open(DATA / "clips.tsv", newline="") as f:
            rows = [r for r in csv.DictReader(f, delimiter="\t") if r["split"] == "media"]
        clip = DATA / rows[0]["file"]
    from lipdub.media.audio import save_wav
    from lipdub.media.read import probe
    from lipdub.speech import synthesize

    info = probe(clip)
    total = min(info.frame_count, args.frames or info.frame_count)
    if args.lengths:
        lengths = [min(int(n), info.frame_count) for n in args.lengths.split(",")]
        shots = [(f"f{n}", n) for n in lengths]
    else:
        shots = [("half", total // 2), ("full", total)]
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        if args.dub:
            shutil.copy(args.dub, project / "d.wav")
        else:
            line = "A benchmark dub, spoken over the whole shot. " * 4
            save_wav(synthesize(line), project / "d.wav")
        (project / "lipdub.toml").write_text(
            f'[project]\nname = "bench"\npreset = "{args.preset}"\n'
            '[settings]\naudio_fit = "pad-trim"\n'
        )
        (project / "shots.yaml").write_text(
            "shots:\n"
            + "".join(
                f"  - {{id: {shot}, source: {clip}, in: 0, out: {frames}, "
                "dubs: [{name: x, audio: d.wav}]}\n"
                for shot, frames in shots
            )
        )
        rows = []
        for shot, frames in shots:
            r = render_once(project, [shot], args)
            rows.append((shot, frames, r))
            print(
                f"{shot}: {frames} frames in {r['wall']:.1f} s = {frames / r['wall']:.2f} fps, "
                f"CPU {r['cpu']:.1f} s, peak RSS {r['peak_mb']:.0f} MB, "
                f"load {r['load'][0]:.2f} → {r['load'][1]:.2f}",
                flush=True,
            )
        ids = [shot for shot, _ in shots]
        together = render_once(project, ids, args, args.jobs) if args.jobs else None
    fps_rt = float(info.fps)
    weights = f" --weights {args.weights}" if args.weights else ""
    flags = (" --serial" if args.serial else "") + (f" --jobs {args.jobs}" if args.jobs else "")
    flags += f" --lengths {args.lengths}" if args.lengths else ""
    flags += f" --preset {args.preset}" if args.preset != "draft" else ""
    flags += f" --dub {Path(args.dub).name}" if args.dub else ""
    model = "lite model, " if args.generator == "stylesync" else ""
    codec = {"draft": "H.264", "broadcast": "ProRes 422 HQ"}.get(args.preset, args.preset)
    lines = [
        f"\n### render — {dt.date.today()} — {device_name(args.device)}\n",
        f"`python bench/render.py --generator {args.generator}{weights} "
        f"--device {args.device}{flags}` on `{clip.name}` ({info.width}×{info.height} @ "
        f"{float(info.fps):.3f} fps; preset {args.preset}: {model}{codec}). Each row is a "
        "fresh process (decode → analysis → generation → paste-back → encode → mux → QC). "
        "CPU s: the render process's user + system time. Load: the 1-minute load average "
        "before → after (wall times are a speed figure only where it stayed below the 2 cores).\n",
        "| shot | frames | wall s | frames/s | × real time | CPU s | CPU s/frame | peak RSS MB "
        "| load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for shot, frames, r in rows:
        fps = frames / r["wall"]
        lines.append(
            f"| {shot} | {frames} | {r['wall']:.1f} | {fps:.2f} | {fps / fps_rt:.3f} | "
            f"{r['cpu']:.1f} | {r['cpu'] / frames:.3f} | {r['peak_mb']:.0f} | "
            f"{r['load'][0]:.2f} → {r['load'][1]:.2f} |"
        )
    if len(rows) > 1:
        base = rows[0][2]["peak_mb"]
        growth = ", ".join(
            f"{shot} {100 * (r['peak_mb'] / base - 1):+.1f} %" for shot, _, r in rows[1:]
        )
        lines += ["", f"Peak RSS against the {rows[0][0]} shot's: {growth}."]
    if together is not None:
        alone = sum(r["wall"] for _, _, r in rows)
        lines += [
            "",
            f"Both shots in one `lipdub render --jobs {args.jobs}`: {together['wall']:.1f} s wall "
            f"(one after the other: {alone:.1f} s), {together['cpu']:.1f} CPU s, load "
            f"{together['load'][0]:.2f} → {together['load'][1]:.2f}.",
        ]
    lines += [
        "",
        "Per stage (seconds; busy = wall time in the stage's own work, summed over its threads; "
        "CPU = its Python threads' CPU, FFmpeg's and x264's own threads not counted; waits on "
        "its input and output queues; the process's peak RSS at the stage's end):",
        "",
        "| shot | stage | busy / wall s | CPU s | wait in s | wait out s | peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for shot, _, r in rows:
        lines += stage_rows(shot, r["reports"].get(shot, {}))
    write_section(RESULTS, "render", "\n".join(lines) + "\n")
    print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
