"""Debug views of a shot's analysis: an annotated video and a contact sheet PNG.

The video shows, on every frame, each track's box, id and actor, its 68 smoothed landmarks (raw
detections in grey where they differ), and the soft blend mask tinted over the lower face; cuts
are flagged. The contact sheet holds annotated thumbnails spread over the shot and, per track, a
row of aligned 256x256 crops with the mask M outlined, as the generator will see them.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from lipdub.analysis.align import (
    paste_region,
    similarity_to_template,
    transform_points,
    warp_to_crop,
)
from lipdub.analysis.masks import UShapePlanner
from lipdub.analysis.protocols import MaskPlanner
from lipdub.analysis.records import ShotAnalysis
from lipdub.media.atomic import atomic_output
from lipdub.media.read import open_video
from lipdub.media.write import VideoWriter, codec_for

log = logging.getLogger(__name__)

#: Distinct colours (RGB) for track ids.
PALETTE = (
    (255, 80, 80), (80, 200, 255), (120, 255, 120), (255, 200, 60), (220, 120, 255),
    (255, 255, 255), (60, 255, 220), (255, 140, 200),
)  # fmt: skip
#: Opacity of the mask tint.
MASK_TINT = 0.45
#: Thumbnails across and down on the contact sheet; side of the per-track crops.
SHEET_COLUMNS, SHEET_ROWS, SHEET_CROP = 4, 3, 160
#: Width of one contact sheet thumbnail.
THUMB_WIDTH = 480


def _colour(track_id: int) -> tuple[int, int, int]:
    return PALETTE[track_id % len(PALETTE)]


def annotate(
    frame: np.ndarray,
    analysis: ShotAnalysis,
    index: int,
    planner: MaskPlanner | None = None,
    size: int = 256,
) -> np.ndarray:
    """Draw the analysis of shot frame ``index`` onto a copy of the RGB ``frame``."""
    out = frame.copy()
    h, w = out.shape[:2]
    thick = max(1, round(max(h, w) / 640))
    font = 0.4 * thick
    planner = planner or UShapePlanner()
    for t in analysis.tracks:
        k = t.at(index)
        if k is None:
            continue
        colour = _colour(t.track_id)
        lm = t.landmarks[k]
        m = similarity_to_template(lm, size)
        mask = planner.plan(transform_points(m, lm), size)
        box = paste_region(m, size, out.shape)
        soft = planner.blend_mask(mask, m, box, feather_px=max(2.0, 0.05 * (box[2] - box[0])))
        x0, y0, x1, y1 = box
        region = out[y0:y1, x0:x1].astype(np.float32)
        tint = np.array(colour, np.float32)
        a = (MASK_TINT * soft)[..., None]
        out[y0:y1, x0:x1] = (region * (1 - a) + tint * a).round().astype(np.uint8)
        bx0, by0, bx1, by1 = (round(float(v)) for v in t.boxes[k])
        cv2.rectangle(out, (bx0, by0), (bx1, by1), colour, thick)
        if t.raw_landmarks is not None:
            for x, y in t.raw_landmarks[k]:
                cv2.circle(out, (int(x), int(y)), thick, (128, 128, 128), -1)
        for x, y in lm:
            cv2.circle(out, (round(float(x)), round(float(y))), thick, colour, -1)
        observed = t.detected is None or bool(t.detected[k])
        label = f"#{t.track_id} {t.actor}" + ("" if observed else " (bridged)")
        if np.isfinite(t.actor_distance):
            label += f" d={t.actor_distance:.2f}"
        cv2.putText(out, label, (bx0, max(12, by0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, font, colour,
                    thick, cv2.LINE_AA)  # fmt: skip
    absolute = analysis.start + index
    text = f"frame {absolute}" + ("  CUT" if absolute in analysis.cuts else "")
    cv2.putText(out, text, (8, 20 * thick), cv2.FONT_HERSHEY_SIMPLEX, font * 1.2, (255, 255, 0),
                thick, cv2.LINE_AA)  # fmt: skip
    return out


def write_overlay(
    source: Path,
    analysis: ShotAnalysis,
    out_video: Path,
    planner: MaskPlanner | None = None,
    codec: str = "h264_draft",
) -> Path:
    """Write the annotated shot to ``out_video`` (H.264 by default, written atomically).

    Raises:
        MediaError: the source cannot be read or the output cannot be written.
        ConfigError: ``out_video``'s suffix cannot hold ``codec``.
    """
    out_video = Path(out_video)
    chosen = codec_for(codec, out_video)
    with open_video(source) as video, atomic_output(out_video) as tmp:
        # H.264 4:2:0 needs even sides.
        w, h = analysis.width - analysis.width % 2, analysis.height - analysis.height % 2
        with VideoWriter(tmp, w, h, analysis.fps, chosen) as writer:
            for i, frame in enumerate(video.frames(analysis.start, analysis.stop)):
                writer.write(np.ascontiguousarray(annotate(frame, analysis, i, planner)[:h, :w]))
    log.info("wrote overlay %s", out_video)
    return out_video


def write_contact_sheet(
    source: Path, analysis: ShotAnalysis, out_png: Path, planner: MaskPlanner | None = None
) -> Path:
    """Write a PNG: annotated thumbnails over the shot, then a row of aligned crops per track."""
    out_png = Path(out_png)
    planner = planner or UShapePlanner()
    n = analysis.frame_count
    picks = _spread(0, n - 1, SHEET_COLUMNS * SHEET_ROWS)
    wanted = set(picks)
    crop_picks = {
        t.track_id: set(
            np.linspace(t.frames[0], t.frames[-1], SHEET_COLUMNS * 2).round().astype(int)
        )
        for t in analysis.tracks
    }
    wanted |= {f for s in crop_picks.values() for f in s}
    thumbs: list[np.ndarray] = []
    crops: dict[int, list[np.ndarray]] = {t.track_id: [] for t in analysis.tracks}
    scale = THUMB_WIDTH / analysis.width
    with open_video(source) as video:
        for i, frame in enumerate(video.frames(analysis.start, analysis.stop)):
            if i not in wanted:
                continue
            if i in picks:
                pic = annotate(frame, analysis, i, planner)
                size = (THUMB_WIDTH, max(1, round(analysis.height * scale)))
                thumbs.append(cv2.resize(pic, size, interpolation=cv2.INTER_AREA))
            for t in analysis.tracks:
                k = t.at(i)
                if k is not None and i in crop_picks[t.track_id]:
                    crops[t.track_id].append(_crop_tile(frame, t.landmarks[k], planner, i))
    sheet = _grid(thumbs, SHEET_COLUMNS)
    rows = [sheet]
    for tid, tiles in crops.items():
        if tiles:
            row = _grid(tiles, len(tiles))
            track = next(t for t in analysis.tracks if t.track_id == tid)
            label = np.zeros((24, row.shape[1], 3), np.uint8)
            cv2.putText(label, f"track {tid}: {track.actor}", (4, 17), cv2.FONT_HERSHEY_SIMPLEX,
                        0.5, _colour(tid), 1, cv2.LINE_AA)  # fmt: skip
            rows += [label, row]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    out_png.parent.mkdir(parents=True, exist_ok=True)
    image = cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR)
    with atomic_output(out_png) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise OSError(f"{out_png}: could not write the contact sheet")
    return out_png


def _crop_tile(frame: np.ndarray, lm: np.ndarray, planner: MaskPlanner, index: int) -> np.ndarray:
    """Aligned 256 crop with M outlined, shrunk to SHEET_CROP."""
    size = 256
    m = similarity_to_template(lm, size)
    crop = warp_to_crop(frame, m, size)
    mask = planner.plan(transform_points(m, lm), size)
    contours, _ = cv2.findContours((mask >= 0.5).astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)  # fmt: skip
    cv2.drawContours(crop, contours, -1, (255, 60, 60), 2, cv2.LINE_AA)
    cv2.putText(crop, str(index), (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1)
    return cv2.resize(crop, (SHEET_CROP, SHEET_CROP), interpolation=cv2.INTER_AREA)


def _spread(first: int, last: int, count: int) -> list[int]:
    """Up to ``count`` frame numbers spread evenly over ``first..last``."""
    count = min(count, last - first + 1)
    return sorted({int(v) for v in np.linspace(first, last, count).round()})


def _grid(tiles: list[np.ndarray], columns: int) -> np.ndarray:
    if not tiles:
        return np.zeros((1, 1, 3), np.uint8)
    h, w = tiles[0].shape[:2]
    rows = []
    for r in range(0, len(tiles), columns):
        chunk = tiles[r : r + columns]
        chunk += [np.zeros_like(tiles[0])] * (columns - len(chunk))
        rows.append(np.hstack([c[:h, :w] for c in chunk]))
    return np.vstack(rows)
