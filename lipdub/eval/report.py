"""The QC report of a render: one HTML page (and a JSON file) over every shot's QC sidecar.

Farm tasks render shots separately; each leaves a sidecar beside its output, and whoever writes
the report (every ``lipdub render`` run does) collects every sidecar in the report's folder (and
those of the plan's outputs), so the page is complete however the shots were distributed, and a
one-clip render beside earlier ones adds itself to the page instead of replacing it.

The page opens with one table of every shot and dub ranked by its worst measure against that
measure's threshold, so a supervisor sees what to check first.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from lipdub.eval.qc import LOUD_DB, OPENING_MARGIN, qc_path
from lipdub.eval.qc_checks import (
    DETAIL_WARN,
    FLICKER_WARN,
    OFFSET_PEAK,
    OFFSET_WARN,
    PHONETIC_MIN_R,
    SEAM_WARN,
    phonetic_offset_confident,
)
from lipdub.media.atomic import atomic_output
from lipdub.media.audio import SILENT_DB

REPORT_NAME = "lipdub-qc"
#: Where other sidecars are looked for under the report's folder: its own outputs' and those of
#: up to two folder levels below (``renders/<generator>/``), not a walk of a whole disk.
SIDECAR_GLOBS = (".qc/*.json", "*/.qc/*.json", "*/*/.qc/*.json")
PLOT_W, PLOT_H = 640, 140
#: Score of a dub with a dubbed actor's track left as the source (``not_dubbed``): past every
#: threshold, whatever else was measured, because that mouth still says the original line.
NOT_DUBBED_SCORE = 10.0


def collect(outputs: list[Path], folder: Path | None = None) -> list[dict[str, Any]]:
    """The QC records of those ``outputs`` that have one, then of every other output in
    ``folder`` (see :data:`SIDECAR_GLOBS`) whose sidecar and file are both there, in path
    order."""
    sides = [qc_path(out) for out in outputs]
    if folder is not None and folder.is_dir():
        known = {s.resolve() for s in sides}
        every = {p for pattern in SIDECAR_GLOBS for p in folder.glob(pattern)}
        found = sorted(p for p in every if p.resolve() not in known)
        sides += [p for p in found if (p.parent.parent / p.name[: -len(".json")]).is_file()]
    records = []
    for side in sides:
        if side.is_file():
            records.append(json.loads(side.read_text(encoding="utf-8")))
    return records


def write_report(folder: Path, outputs: list[Path], title: str) -> Path | None:
    """Write ``folder/lipdub-qc.html`` and ``.json`` for ``outputs`` and every other sidecar in
    ``folder``; None when none has QC."""
    records = collect(outputs, folder)
    if not records:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    page = folder / f"{REPORT_NAME}.html"
    sections = "\n".join(_section(r, folder, k) for k, r in enumerate(records))
    body = _ranking(records) + sections
    # Whole files or the old ones: a supervisor's browser, or a second render finishing beside
    # this one, never reads a half-written page.
    for path, text in (
        (folder / f"{REPORT_NAME}.json", json.dumps(records, indent=1)),
        (page, _PAGE.format(title=html.escape(title), body=body)),
    ):
        with atomic_output(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return page


def scores(r: dict[str, Any]) -> dict[str, float]:
    """Each measure of a QC record against its threshold: 1 is at the threshold, above 1 is
    past it (worse), whichever way the measure points. Measures not taken are left out; an AV
    offset counts only where it is confident (as QC warns); a track left undubbed is
    :data:`NOT_DUBBED_SCORE`."""
    out: dict[str, float] = {}
    if r.get("detail_ratio") is not None:
        out["detail_ratio"] = DETAIL_WARN / max(float(r["detail_ratio"]), 1e-6)
    if r.get("flicker_ratio") is not None:
        out["flicker_ratio"] = float(r["flicker_ratio"]) / FLICKER_WARN
    if r.get("seam_ratio") is not None:
        out["seam_ratio"] = float(r["seam_ratio"]) / SEAM_WARN
    quiet, loud = r.get("rendered_silent_opening"), r.get("rendered_loud_opening")
    if quiet is not None and loud is not None:
        out["rendered_silent_opening"] = (float(quiet) - float(loud)) / OPENING_MARGIN
    confident = phonetic_offset_confident(r.get("offset_peak"), r.get("offset_r"))
    if r.get("av_offset") is not None and confident:
        out["av_offset"] = abs(int(r["av_offset"])) / OFFSET_WARN
    if r.get("not_dubbed"):
        out["not_dubbed"] = NOT_DUBBED_SCORE
    return out


def worst(r: dict[str, Any]) -> tuple[str, float] | None:
    """(measure, score) of the record's worst measure, or None when none was taken."""
    s = scores(r)
    return max(s.items(), key=lambda kv: kv[1]) if s else None


def _ranking(records: list[dict[str, Any]]) -> str:
    """The opening table: every shot and dub, worst first."""
    order = sorted(
        range(len(records)), key=lambda k: -(worst(records[k]) or ("", float("-inf")))[1]
    )
    rows = []
    for k in order:
        r = records[k]
        w = worst(r)
        name, score = w if w is not None else ("n/a", None)
        value = "n/a" if w is None else _fmt(_value(r, name))
        flag = ' class="past"' if score is not None and score > 1 else ""
        rows.append(
            f'<tr{flag}><td><a href="#dub{k}">{html.escape(r["shot"])}</a></td>'
            f"<td>{html.escape(r['dub'])}</td><td>{html.escape(name)}</td><td>{value}</td>"
            f"<td>{'n/a' if score is None else f'{score:.2f}'}</td>"
            f"<td>{len(r.get('warnings', []))}</td></tr>"
        )
    return (
        "<h2>worst first</h2><p>Each dub's worst measure against its threshold (1.00 = at the "
        "threshold, higher = past it): detail_ratio below "
        f"{DETAIL_WARN}, flicker_ratio above {FLICKER_WARN}, seam_ratio above {SEAM_WARN}, the "
        f"silent frames' opening over the loud frames' by more than {OPENING_MARGIN} IOD, a "
        f"av_offset beyond {OFFSET_WARN} frames where the search is confident (offset_peak "
        f"&ge; {OFFSET_PEAK}, offset_r &ge; {PHONETIC_MIN_R}); a dubbed actor's track left "
        f"as the source (not_dubbed: the number of such tracks) always ranks first.</p>"
        '<table class="rank"><tr><th>shot</th><th>dub</th><th>worst measure</th>'
        "<th>value</th><th>vs threshold</th><th>warnings</th></tr>" + "".join(rows) + "</table>"
    )


def _value(r: dict[str, Any], name: str) -> Any:
    """The value a ranking row shows for measure ``name`` (tracks left undubbed: how many)."""
    value = r.get(name)
    return len(value) if name == "not_dubbed" and value is not None else value


def _not_dubbed(tracks: list[dict[str, Any]]) -> str:
    """ "track 2 (anna): too few usable frames ..." per track left as the source."""
    if not tracks:
        return "none"
    return "<br>".join(
        html.escape(f"track {t['track']} ({t['actor']}): {t['reason']}") for t in tracks
    )


def _rel(path: Path, folder: Path) -> str:
    try:
        return str(path.resolve().relative_to(folder.resolve()))
    except ValueError:
        return path.resolve().as_uri()


def _plot(r: dict[str, Any]) -> str:
    """Inline SVG: dub loudness (grey) and mouth opening (red) over the shot's frames."""
    loud = r["loudness_db"]
    mouth = r["mouth_opening"]
    n = max(len(loud), 1)

    def x(i: int) -> float:
        return 4 + (PLOT_W - 8) * i / max(n - 1, 1)

    def y_db(v: float) -> float:
        return PLOT_H - 4 - (PLOT_H - 8) * (min(max(v, -60.0), 0.0) + 60.0) / 60.0

    def y_open(v: float) -> float:
        return PLOT_H - 4 - (PLOT_H - 8) * min(max(v, 0.0), 0.6) / 0.6

    loud_pts = " ".join(f"{x(i):.1f},{y_db(v):.1f}" for i, v in enumerate(loud))
    segments: list[list[str]] = []
    current: list[str] = []
    for i, v in enumerate(mouth):
        if v is None:
            if current:
                segments.append(current)
            current = []
        else:
            current.append(f"{x(i):.1f},{y_open(v):.1f}")
    if current:
        segments.append(current)
    mouth_lines = "".join(
        f'<polyline points="{" ".join(s)}" fill="none" stroke="#d33" stroke-width="1.5"/>'
        for s in segments
    )
    silent_y = y_db(SILENT_DB)
    return (
        f'<svg width="{PLOT_W}" height="{PLOT_H}" style="background:#fafafa;border:1px solid #ccc">'
        f'<line x1="0" x2="{PLOT_W}" y1="{silent_y:.1f}" y2="{silent_y:.1f}" stroke="#aaa" '
        f'stroke-dasharray="4 3"/>'
        f'<polyline points="{loud_pts}" fill="none" stroke="#888" stroke-width="1"/>'
        f"{mouth_lines}</svg>"
    )


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v}"


def _resting(counts: dict[str, int]) -> str:
    if not counts:
        return "n/a"
    return f"{counts.get('source_frames', 0)} / {counts.get('rest_frames', 0)}"


def _bilabials(b: dict[str, Any]) -> str:
    """ "7 of 9 (78 %), phones from the script" — or why nothing was measured."""
    if not b:
        return "n/a"
    how = {"script": "phones from the script", "recognition": "phones recognised"}.get(
        b.get("method", ""), ""
    )
    if b.get("share") is None:
        return html.escape(f"{b.get('bilabials', 0)} in the dub, none measured; {how}")
    return html.escape(f"{b['closed']} of {b['measured']} ({b['share']:.0%}), {how}")


def _section(r: dict[str, Any], folder: Path, k: int) -> str:
    out = Path(r["output"])
    thumbs = qc_path(out).parent
    rows = [
        ("output", f'<a href="{_rel(out, folder)}">{html.escape(str(out))}</a>'),
        ("frames / fps", f"{r['frames']} @ {r['fps']}"),
        ("generator", html.escape(r["generator"])),
        (f"mouth opening, silent frames (&lt; {SILENT_DB:.0f} dBFS)", _fmt(r["silent_opening"])),
        (f"mouth opening, loud frames (&ge; {LOUD_DB:.0f} dBFS)", _fmt(r["loud_opening"])),
        ("seam: edge energy on the mask border, output / source", _fmt(r.get("seam_ratio"))),
        ("flicker on silent frames inside the mask, output / source", _fmt(r.get("flicker_ratio"))),
        ("detail: lips' Laplacian energy, output / source", _fmt(r.get("detail_ratio"))),
        ("detail: edge energy inside the mask, output / source", _fmt(r.get("mask_detail_ratio"))),
        ("dubbed tracks left as the source (NOT dubbed)", _not_dubbed(r.get("not_dubbed") or [])),
        ("lip sync: mouth opening vs the dub's visemes, r at lag 0", _fmt(r.get("sync_r"))),
        ("AV offset (frames; &gt; 0: audio late)", _fmt(r["av_offset"])),
        ("AV offset: r at that lag", _fmt(r.get("offset_r"))),
        ("AV offset confidence (peak, 0..1)", _fmt(r.get("offset_peak"))),
        ("LSE-C (SyncNet, research-only; qc_syncnet)", _fmt(r.get("lse_c"))),
        (
            "resting on silence: frames kept from the source / from the rest crop",
            _resting(r.get("resting") or {}),
        ),
        ("p/b/m with closed lips", _bilabials(r.get("bilabials") or {})),
    ]
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in r["warnings"]) or "<li>none</li>"
    missed = "".join(
        f'<figure><img src="{_rel(thumbs / name, folder)}"><figcaption>frame '
        f"{int(name.rsplit('_', 1)[1].split('.')[0])}</figcaption></figure>"
        for name in (r.get("bilabials") or {}).get("missed_thumbnails", [])
    )
    if missed:
        missed = f'<h3>p/b/m left open</h3><div class="thumbs">{missed}</div>'
    before = _rel(thumbs / r["thumbnails"]["before"], folder)
    after = _rel(thumbs / r["thumbnails"]["after"], folder)
    return (
        f'<section id="dub{k}"><h2>{html.escape(r["shot"])} — {html.escape(r["dub"])}</h2>'
        f'<div class="thumbs"><figure><img src="{before}"><figcaption>before</figcaption></figure>'
        f'<figure><img src="{after}"><figcaption>after</figcaption></figure></div>'
        f"<p>dub loudness (grey, dBFS; dashed = silence threshold) and mouth opening (red, in "
        f"inter-ocular distances) per frame:</p>{_plot(r)}"
        f"<table>{table}</table>{missed}<h3>warnings</h3><ul>{warnings}</ul></section>"
    )


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 60em; }}
section {{ border-top: 1px solid #ccc; padding-top: 1em; margin-top: 1em; }}
.thumbs {{ display: flex; gap: 1em; }} figure {{ margin: 0; }} img {{ max-width: 320px; }}
th {{ text-align: left; padding-right: 1em; font-weight: normal; color: #555; }}
table.rank td {{ padding-right: 1em; }} tr.past td {{ color: #b00; font-weight: bold; }}
</style></head>
<body><h1>{title}</h1>
{body}
</body></html>
"""
