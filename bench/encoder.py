"""H.264 encoder settings: CPU per frame, picture and size, on real 1080p footage.

The encode is the longest stage of a CPU render (bench/render.py's per-stage table), so its x264
preset is chosen by measure. Each clip's first frames are decoded once, then encoded with each
setting exactly as lipdub's writer does (rgb24 → yuv420p on one swscale thread, the codec's
options with ``mbtree=0``, x264 on ``X264_THREADS``), in memory. Reports process CPU ms per frame
(a figure that holds on a loaded machine), RGB PSNR of the decoded result against the frames that
went in, and the size. Appends a section to bench/results.md.

    python bench/encoder.py [--frames 150] [--presets veryfast,superfast] [--no-write]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import DATA, RESULTS, device_name, write_section  # bench/render.py

from lipdub.media.read import SCALE_THREADS
from lipdub.media.write import CODECS, X264_THREADS


def decode(path: Path, frames: int) -> list[np.ndarray]:
    """The first ``frames`` frames of ``path`` as RGB."""
    out: list[np.ndarray] = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            out.append(f.to_ndarray(format="rgb24"))
            if len(out) == frames:
                break
    return out


def encode(frames: list[np.ndarray], options: dict[str, str]) -> tuple[float, float, int]:
    """CPU ms per frame, RGB PSNR (dB) and bytes of ``frames`` encoded with x264 ``options``."""
    h, w, _ = frames[0].shape
    buf = io.BytesIO()
    t0 = time.process_time()
    with av.open(buf, "w", format="mov", options={"fflags": "+bitexact"}) as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = options
        s.codec_context.thread_count = X264_THREADS
        for i, rgb in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            vf = vf.reformat(format="yuv420p", threads=SCALE_THREADS)
            vf.pts, vf.time_base = i, Fraction(1, 25)
            c.mux(s.encode(vf))
        c.mux(s.encode(None))
    cpu_ms = 1000 * (time.process_time() - t0) / len(frames)
    size = buf.getbuffer().nbytes
    buf.seek(0)
    with av.open(buf) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    errors = [
        np.mean((a.astype(np.float32) - b) ** 2) for a, b in zip(frames, decoded, strict=True)
    ]
    mse = float(np.mean(errors))
    return cpu_ms, 10 * float(np.log10(255**2 / mse)), size


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150, help="frames per clip")
    ap.add_argument("--presets", default="veryfast,superfast", help="x264 presets to compare")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA} is absent")
    draft = dict(CODECS["h264_draft"].options)
    presets = args.presets.split(",")
    with (DATA / "clips.tsv").open() as f:
        clips = [
            r["file"]
            for r in csv.DictReader(f, delimiter="\t")
            if sorted((int(r["width"]), int(r["height"]))) == [1080, 1920]
        ]
    rows = []
    for clip in clips:
        frames = decode(DATA / clip, args.frames)
        cells = []
        for p in presets:
            ms, psnr, size = encode(frames, {**draft, "preset": p})
            cells.append(f"{ms:.1f} / {psnr:.2f} / {size / 1024 / len(frames):.1f}")
            print(f"{Path(clip).stem} {p}: {ms:.1f} ms/frame, {psnr:.2f} dB, {size} bytes")
        rows.append(f"| {Path(clip).stem} | {len(frames)} | " + " | ".join(cells) + " |")
    if args.no_write:
        return
    other = ", ".join(f"{k} {v}" for k, v in draft.items() if k != "preset")
    text = (
        f"\n### encoder — {dt.date.today()} — {device_name('cpu')}\n\n"
        f"`python bench/encoder.py --frames {args.frames} --presets {args.presets}`: the first "
        f"frames of each 1080p clip of ../shared/data, encoded as the `h264_draft` writer does "
        f"({other}; x264 on {X264_THREADS} thread) with each preset. Cells: process CPU ms per "
        f"frame / RGB PSNR against the frames encoded (dB) / kB per frame.\n\n"
        "| clip | frames | " + " | ".join(presets) + " |\n"
        "| --- | --- | " + " | ".join("---" for _ in presets) + " |\n" + "\n".join(rows) + "\n"
    )
    write_section(RESULTS, "encoder", text)
    print(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
