"""Editorial import and export at feature scale: a 1,500-event CMX 3600 EDL.

Writes N short synthetic camera files (29.97 drop-frame timecode, one per reel), an EDL of
``--events`` cuts over them (every 50th a dissolve, every 100th a speed change), then times
``lipdub shots import`` (with --media lookup by reel and rate detection) and the export of the
relinked cut (as EDL and FCP XML; nothing rendered, so every clip gets its marker: the cut's
size is what is measured). Appends a section to bench/results.md.

    python bench/timeline.py [--events 1500] [--reels 40]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.render import cpu_name  # noqa: E402
from lipdub.config.plan import load_plan  # noqa: E402
from lipdub.config.project import default_project  # noqa: E402
from lipdub.config.timecode import format_timecode  # noqa: E402
from lipdub.media.audio import save_wav  # noqa: E402
from lipdub.timeline.export import export_cut  # noqa: E402
from lipdub.timeline.importer import ImportOptions, import_cut, write_shots  # noqa: E402
from tests.conftest import make_video, tone  # noqa: E402

RATE = Fraction(30000, 1001)
RESULTS = REPO / "bench" / "results.md"
REEL_FRAMES = 600  # 20 s of 29.97 per reel: every event cuts 1-2 s out of one.


def write_edl(path: Path, events: int, reels: int) -> None:
    """An EDL of ``events`` cuts in a row, each a different 40-60 frame piece of a reel."""
    lines = ["TITLE: BENCH FEATURE", "FCM: DROP FRAME", ""]
    record = 108000 - 108  # 01:00:00;00 as a frame count at 29.97 DF.
    for n in range(1, events + 1):
        reel, length = f"R{n % reels:03d}", 40 + n % 21
        src = 30 + (n * 37) % (REEL_FRAMES - length - 60)
        speed = n % 100 == 0
        rec_len = length // 2 if speed else length
        tc = [format_timecode(f, RATE) for f in (src, src + length, record, record + rec_len)]
        lines.append(f"{n:03d}  {reel}     V     C        {' '.join(tc)}")
        if speed:
            lines.append(f"M2   {reel}       059.9                {tc[0]}")
        lines.append(f"* FROM CLIP NAME: shot_{n:04d}")
        record += rec_len
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--reels", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "media").mkdir()
        for r in range(args.reels):
            make_video(root / "media" / f"R{r:03d}.mov", REEL_FRAMES, RATE, timecode="00:00:00;00")
        save_wav(tone(2.0), root / "de.wav")
        write_edl(root / "cut.edl", args.events, args.reels)
        shots = root / "shots.yaml"
        t0 = time.perf_counter()
        # One dub file for every shot is enough to time the import (a pattern must name a field).
        (root / "audio").mkdir()
        for n in range(1, args.events + 1):
            (root / "audio" / f"{n}.wav").symlink_to(root / "de.wav")
        options = ImportOptions(
            media_dirs=(root / "media",), dubs=(("de", f"{root}/audio/{{event}}.wav"),)
        )
        result = import_cut(root / "cut.edl", shots, options)
        write_shots(result, shots, root / "cut.edl")
        t_import = time.perf_counter() - t0
        t0 = time.perf_counter()
        plan = load_plan(shots, default_project(root), {})
        t_plan = time.perf_counter() - t0
        times = {}
        for suffix in (".edl", ".xml"):
            t0 = time.perf_counter()
            export_cut(plan.timeline, shots, plan.shots, {}, root / f"dub{suffix}")
            times[suffix] = time.perf_counter() - t0
    row = (
        f"| {args.events} | {args.reels} | {len(result.shots)} | {len(result.refused)} | "
        f"{t_import:.1f} | {t_plan:.1f} | {times['.edl']:.1f} | {times['.xml']:.1f} |"
    )
    print(row)
    section = (
        f"\n### {dt.date.today()} — `python bench/timeline.py --events {args.events} "
        f"--reels {args.reels}` ({cpu_name()})\n\n"
        "| events | reels | shots | refused | import s | plan s | export EDL s | export XML s |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
        f"{row}\n"
    )
    text = RESULTS.read_text()
    if "\n## timeline\n" not in text:
        text += "\n## timeline\n\nImport and export of an editorial cut (`bench/timeline.py`).\n"
    RESULTS.write_text(text + section)


if __name__ == "__main__":
    main()
