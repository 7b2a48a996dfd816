"""Quality control of one rendered dub: what an editor checks before cutting it in.

Measured from the *output file* (decoded again), so it reports what was delivered: mouth opening
per frame (dlib landmarks fitted in the tracked face boxes) against the dub's loudness, the
opening on the dub's silent frames vs its loud frames (a mouth that quivers during silence is the
most reported lip-sync defect), the lip sync and A/V offset of the delivered mouth against the
dub's visemes (:mod:`lipdub.eval.phonetic_sync`: no learned audio-visual model, ±15-frame
search, and how confident that search is), the seam, flicker and the lips' own detail against
the source, before/after thumbnails, the tracks left undubbed, and the render's warnings.
LSE-C / LSE-D by lipdub's SyncNet (crops aligned with the track's smoothed landmarks) only when
asked for (``qc_syncnet``): its weights are research-only. What is warned about, at which
threshold, is :mod:`lipdub.eval.qc_checks`.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lipdub.analysis.align import similarity_to_template, warp_to_crop
from lipdub.analysis.mouth_class import closed_level
from lipdub.analysis.runs import long_runs
from lipdub.eval.closures import (
    check_closures,
    closure_summary,
    closure_warning,
    lower_face_box,
    missed_thumbnails,
)
from lipdub.eval.phonetic_sync import expected_opening, phonetic_sync
from lipdub.eval.qc_checks import (
    LipDetail,
    SourcePixels,
    lips_box_or_none,
    measure_warnings,
    offset_peak,
    offset_warning,
    phonetic_offset_warning,
    ratio,
)
from lipdub.media.audio import SILENT_DB, loudness_per_frame
from lipdub.media.read import open_video
from lipdub.media.stream import prefetching
from lipdub.phonetics.track import VisemeTrack

log = logging.getLogger(__name__)

#: A frame at least this loud counts as speech ("loud").
LOUD_DB = -30.0
#: The mask's feathered border (where a seam would show) lies between these values.
BORDER_LOW, BORDER_HIGH = 0.05, 0.95
#: "Inside the mask" for flicker.
INSIDE = 0.5
#: :func:`mask_zones`' values on the feathered border: below INSIDE, and from INSIDE on.
ZONE_BORDER_OUT, ZONE_BORDER_IN = 1, 2
#: Fewest pixels a band must have to be measured.
MIN_PIXELS = 16
#: Thumbnails are scaled to this width.
THUMB_WIDTH = 320
#: Aligned crop side fed to the SyncNet (it resizes to its own resolution).
SYNC_CROP = 128
#: Frames each QC decode thread reads ahead (1080p: 6 MB each; QC's own memory grows with the
#: shot, so its read-ahead stays small).
QC_AHEAD = 2
#: Fewest tracked frames for a sync measurement (SyncNet's 5-frame window, and some margin).
SYNC_MIN_FRAMES = 10
#: Mean opening on silent frames above the loud frames' by more than this (IOD) is a warning.
OPENING_MARGIN = 0.02
#: The opening warning counts only silences this long (seconds): the shortest pause on which the
#: default driver closes the lips (lipdub.exemplar.target.MIN_PAUSE_S, a layer above: kept equal
#: by hand). Shorter silences are the gaps between words and the stops of t/k/p, where a mouth
#: still speaking is right: counting them flagged the demo's own German take (3 gap frames at
#: 0.12-0.25 IOD).
PAUSE_S = 0.2

#: Source pixels the render kept: shot frame -> (box, (h, w, 3) uint8 RGB crop), None for none.
KeptSource = Callable[[int], "tuple[tuple[int, int, int, int], np.ndarray] | None"]


@dataclass
class DubQC:
    """QC numbers of one output file."""

    shot: str  # Shot id.
    dub: str  # Dub name.
    output: str  # The rendered file.
    frames: int  # Frames in the output.
    fps: str  # Exact rate, "num/den".
    generator: str  # Generator that made it.
    loudness_db: list[float] = field(default_factory=list)  # Dub RMS per frame, dBFS.
    mouth_opening: list[float | None] = field(default_factory=list)  # Per frame, IODs.
    silent_opening: float | None = None  # Mean opening on silent frames.
    loud_opening: float | None = None  # Mean opening on loud frames.
    seam_ratio: float | None = None  # Edge energy on the mask's border, output / source.
    flicker_ratio: float | None = None  # Change inside the mask on silent frames, out / src.
    detail_ratio: float | None = None  # Lips' Laplacian energy (tight box), out / src.
    mask_detail_ratio: float | None = None  # Edge energy inside the whole mask, out / src.
    # Lip sync against the dub's visemes (lipdub.eval.phonetic_sync): Pearson r of the mouth's
    # opening and the one the visemes ask for, at the delivered alignment.
    sync_r: float | None = None
    av_offset: int | None = None  # Lag of the best r, frames (> 0: the audio is late).
    offset_r: float | None = None  # r at that lag.
    offset_peak: float | None = None  # Confidence of that lag (see OFFSET_PEAK), 0..1.
    sync_by: str | None = None  # What measured the three above ("visemes (hama 1.7.0)").
    speech_frames: int | None = None  # Loud frames of the dub within the measured span.
    # SyncNet's, only with the qc_syncnet setting (research-only weights):
    lse_c: float | None = None  # Sync confidence: median − min SyncNet distance over offsets.
    lse_d: float | None = None  # Min SyncNet distance over offsets.
    syncnet_offset: int | None = None  # SyncNet's offset search's minimum, frames.
    syncnet_offset_peak: float | None = None  # Its confidence, 0..1.
    syncnet: str | None = None  # SyncNet that measured the four above.
    # Dubbed actors' tracks left as the source (a bank too thin, no fallback chosen): each
    # {"track", "actor", "reason"}. Their mouths say the original line.
    not_dubbed: list[dict[str, Any]] = field(default_factory=list)
    rendered_silent_opening: float | None = None  # Mean opening, silent rendered frames.
    rendered_loud_opening: float | None = None  # Mean opening, loud rendered frames.
    resting: dict[str, int] = field(default_factory=dict)  # Silent frames: source / rest crop.
    bilabials: dict[str, Any] = field(default_factory=dict)  # The dub's p/b/m: found how, how
    # many closed, thumbnails of those that did not (lipdub.eval.closures.closure_summary).
    thumbnails: dict[str, str] = field(default_factory=dict)  # before/after PNG paths.
    warnings: list[str] = field(default_factory=list)

    def save(self, path: Path) -> None:
        """Write as JSON (the report reads these sidecars)."""
        path.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")


def qc_path(output: Path) -> Path:
    """Where the QC sidecar of an output lives: ``renders/.qc/<name>.json``."""
    return output.parent / ".qc" / f"{output.name}.json"


def measure_dub(
    *,
    shot: Any,
    dub: Any,
    generator: str,
    audio_16k: np.ndarray,
    tracks: list[Any],
    detector: Any | None,
    warnings: list[str],
    region_fn: Callable[[int, tuple[int, ...]], Any] | None = None,
    syncnet: tuple[str, Any] | None = None,
    resting: dict[str, int] | None = None,
    own_mouth: np.ndarray | None = None,
    visemes: VisemeTrack | None = None,
    bank_closed: int | None = None,
    not_dubbed: list[dict[str, Any]] | None = None,
    kept_source: KeptSource | None = None,
    before_thumb: np.ndarray | None = None,
) -> DubQC:
    """Decode ``dub.output`` and measure it; ``tracks`` are the dubbed FaceTracks (or none).

    ``region_fn(i, frame_shape)`` gives the (box, :func:`mask_zones` of the soft blend mask) of
    the first dubbed face in shot frame ``i`` (or None); with it the seam and flicker are
    measured against the source.
    ``syncnet`` = (name, SyncNet), when asked for, measures LSE-C / LSE-D of the first dubbed
    track (research-only weights: a warning says so).
    ``resting`` counts the frames the render rested on silence (see lipdub.analysis.rest), and
    ``own_mouth`` (per shot frame) marks those that show the actor's own mouth: the warning about
    a mouth more open on silence than on speech looks at the rendered frames only.
    ``visemes`` (the dub's viseme track) gives the lip sync and A/V offset, and has the p/b/m
    whose closure is checked on the output; ``bank_closed`` counts the closed-lip frames the
    generator had to show them with. ``not_dubbed`` lists the tracks left as the source.
    ``kept_source(i)`` gives the source pixels the render kept round the first dubbed face of
    shot frame ``i`` (box, RGB crop; None where it kept none), and ``before_thumb`` the
    :func:`thumbnail` of the source at :func:`before_frame`, kept while encoding: with both, QC
    decodes the source only for frames nothing was kept of.
    """
    output = Path(dub.output)
    qc = DubQC(
        shot=shot.id,
        dub=dub.name,
        output=str(output),
        frames=0,
        fps=f"{shot.fps.numerator}/{shot.fps.denominator}",
        generator=generator,
        warnings=list(warnings),
        resting=dict(resting or {}),
        not_dubbed=list(not_dubbed or []),
    )
    loud = loudness_per_frame(audio_16k, shot.frame_count, shot.fps)
    qc.loudness_db = [round(float(x), 2) for x in loud]
    track = tracks[0] if tracks else None
    seams = _SeamFlicker(loud < SILENT_DB)
    lips = LipDetail(loud >= LOUD_DB)
    sync_crops = _read_output(
        qc, shot, output, _thumb_at(loud), track, detector, region_fn, seams,
        syncnet is not None, lips, kept_source, before_thumb,
    )  # fmt: skip
    qc.seam_ratio, qc.flicker_ratio, qc.mask_detail_ratio = seams.ratios()
    qc.detail_ratio = lips.ratio()
    qc.warnings += measure_warnings(qc.detail_ratio, qc.flicker_ratio, qc.seam_ratio)
    if track is None:
        qc.warnings.append("no dubbed face: mouth opening not measured")
    else:
        _judge_opening(qc, loud, own_mouth)
        if visemes is not None:
            _judge_closures(qc, visemes, track, output, bank_closed)
            _judge_sync(qc, visemes, loud, shot.fps)
    if syncnet is not None and track is not None:
        qc.warnings.append(syncnet_terms(syncnet[0]))
        if len(sync_crops) >= SYNC_MIN_FRAMES:
            span = np.asarray(track.frames[: len(sync_crops)], np.int64)
            speech = int((loud[span[span < len(loud)]] >= LOUD_DB).sum())
            _measure_sync(
                qc, syncnet, np.stack(sync_crops), audio_16k, track.frames, shot.fps, speech
            )
        else:
            qc.warnings.append(
                f"LSE-C not measured: the face is on screen < {SYNC_MIN_FRAMES} frames"
            )
    qc.save(qc_path(output))
    return qc


def _read_output(
    qc: DubQC,
    shot: Any,
    output: Path,
    thumb_at: int,
    track: Any | None,
    detector: Any | None,
    region_fn: Callable[[int, tuple[int, ...]], Any] | None,
    seams: _SeamFlicker,
    sync: bool,
    lips: LipDetail | None = None,
    kept_source: KeptSource | None = None,
    before_thumb: np.ndarray | None = None,
) -> list[np.ndarray]:
    """One pass over the output: frame count, mouth opening per frame, seams, flicker and lip
    detail against the source (where seams are measured), the loudest frame's thumbnails;
    returns the aligned crops SyncNet reads (when ``sync``). The source's pixels come from
    ``kept_source`` where it covers what is measured, else from a decode of the source that
    starts at the first frame that needs it."""
    from lipdub.analysis.masks import mouth_opening

    thumbs_dir = qc_path(output).parent
    thumbs_dir.mkdir(parents=True, exist_ok=True)
    opening: list[float | None] = []
    sync_crops: list[np.ndarray] = []
    with (
        open_video(output) as out,
        _SourceFrames(shot) as source,
        prefetching(QC_AHEAD) as ahead,  # The output's decode in a thread, beside the measuring.
    ):
        qc.frames = out.info.frame_count
        for i, frame in enumerate(ahead(out.frames())):
            if i == thumb_at:
                before = before_thumb
                if before is None and (whole := source.frame(i)) is not None:
                    before = thumbnail(whole)
                if before is not None:
                    _write_thumb(before, thumbs_dir / f"{output.stem}_before.png")
                _write_thumb(thumbnail(frame), thumbs_dir / f"{output.stem}_after.png")
            j = track.at(i) if track is not None else None
            lm = track.landmarks[j] if track is not None and j is not None else None
            region = region_fn(i, frame.shape) if region_fn is not None else None
            lips_at = (
                lips_box_or_none(lm, frame.shape)
                if region_fn is not None and lips is not None and lm is not None and lips.wants(i)
                else None
            )
            boxes = [b for b in (region[0] if region is not None else None, lips_at) if b]
            src = _source_pixels(i, boxes, kept_source, source) if boxes else None
            if region is not None and src is not None:
                x0, y0, x1, y1 = region[0]
                seams.add(i, src.crop(region[0]), frame[y0:y1, x0:x1], region[1])
            if track is None or j is None or detector is None:
                opening.append(None)
            else:
                fit = detector.landmarks(frame, [track.boxes[j]])[0]
                opening.append(round(mouth_opening(fit), 4))
            if lips_at is not None and src is not None and lips is not None and lm is not None:
                lips.add(i, src, frame, lm)
            if sync and lm is not None:
                sync_crops.append(_aligned(frame, lm))
    qc.thumbnails = {"before": f"{output.stem}_before.png", "after": f"{output.stem}_after.png"}
    qc.mouth_opening = opening
    return sync_crops


def _source_pixels(
    i: int, boxes: list[Any], kept_source: KeptSource | None, source: _SourceFrames
) -> SourcePixels | None:
    """The source's pixels of shot frame ``i`` that cover every box: those the render kept,
    else the decoded frame (None: the source has no frame ``i``)."""
    kept = kept_source(i) if kept_source is not None else None
    if kept is not None:
        (x0, y0, _, _), crop = kept
        pixels = SourcePixels(crop, x0, y0)
        if all(pixels.covers(b) for b in boxes):
            return pixels
    frame = source.frame(i)
    return None if frame is None else SourcePixels(frame)


class _SourceFrames:
    """The shot's source frames, decoded only when asked for, in rising order: the decode starts
    at the first frame asked for and runs forward (QC asks only where the render kept nothing,
    which on an exemplar render is rarely any frame)."""

    def __init__(self, shot: Any) -> None:
        self.shot = shot
        self._stack = ExitStack()
        self._frames: Iterator[np.ndarray] | None = None
        self._at = -1  # Shot frame of the last frame read.
        self._last: np.ndarray | None = None

    def frame(self, i: int) -> np.ndarray | None:
        """Shot frame ``i`` (not below the last one asked for), None past the source's end."""
        if self._frames is None:
            src = self._stack.enter_context(
                open_video(self.shot.source, self.shot.settings.conform_vfr)
            )
            self._frames = src.frames(self.shot.start + i, self.shot.stop)
            self._at = i - 1
        if i < self._at:
            raise ValueError(f"source frame {i} asked for after frame {self._at}")
        while self._at < i:
            self._last = next(self._frames, None)
            self._at += 1
        return self._last

    def __enter__(self) -> _SourceFrames:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def _judge_opening(qc: DubQC, loud: np.ndarray, own_mouth: np.ndarray | None) -> None:
    """Mean mouth opening on silent and on loud frames, and the warning when silence opens the
    mouth wider than speech."""
    values = np.array([np.nan if o is None else o for o in qc.mouth_opening], np.float64)
    n = min(len(values), len(loud))
    silent, speech = loud[:n] < SILENT_DB, loud[:n] >= LOUD_DB
    if np.isfinite(values[:n][silent]).any():
        qc.silent_opening = round(float(np.nanmean(values[:n][silent])), 4)
    if np.isfinite(values[:n][speech]).any():
        qc.loud_opening = round(float(np.nanmean(values[:n][speech])), 4)
    pause = max(1, round(PAUSE_S * float(Fraction(qc.fps))))
    qc.rendered_silent_opening, qc.rendered_loud_opening = rendered_openings(
        values[:n], loud[:n], own_mouth, pause
    )
    backwards = opening_warning(values[:n], loud[:n], own_mouth, pause)
    if backwards is not None:
        qc.warnings.append(backwards)


def _judge_closures(
    qc: DubQC, visemes: VisemeTrack, track: Any, output: Path, bank_closed: int | None
) -> None:
    """Which of the dub's p/b/m the delivered mouth closed on (:mod:`lipdub.eval.closures`)."""
    from lipdub.analysis.masks import mouth_opening

    gaps = np.array([np.nan if o is None else o for o in qc.mouth_opening], np.float64)
    level = closed_level(np.array([mouth_opening(lm) for lm in track.landmarks]))
    frames = [c.frame for c in visemes.closures]
    check = None if level is None else check_closures(gaps, level, frames)
    thumbs: list[str] = []
    if check is not None and check.missed:
        with open_video(output) as v:
            shape = (v.info.height, v.info.width)
        boxes = {
            f: lower_face_box(track.landmarks[j], shape)
            for f in check.missed
            if (j := track.at(f)) is not None
        }
        thumbs = missed_thumbnails(output, list(check.missed), boxes, qc_path(output).parent)
    qc.bilabials = closure_summary(check, visemes.summary(), thumbs, bank_closed)
    warning = closure_warning(qc.bilabials)
    if warning is not None:
        qc.warnings.append(warning)


def _judge_sync(qc: DubQC, visemes: VisemeTrack, loud: np.ndarray, fps: Fraction) -> None:
    """Lip sync and A/V offset of the delivered mouth against the dub's visemes
    (:mod:`lipdub.eval.phonetic_sync`); the offset warning only where the search is confident.
    Nothing is set where the measure is undefined (a silent dub, too few measured frames)."""
    opening = np.array([np.nan if o is None else o for o in qc.mouth_opening], np.float64)
    n = min(len(opening), len(loud))
    qc.speech_frames = int((loud[:n][np.isfinite(opening[:n])] >= LOUD_DB).sum())
    res = phonetic_sync(opening, expected_opening(visemes, loud), float(fps))
    if res is None:
        return
    qc.sync_r, qc.offset_r = round(res.r0, 3), round(res.r_best, 3)
    qc.av_offset, qc.offset_peak = res.offset, round(res.peak, 3)
    qc.sync_by = f"visemes ({visemes.recognizer})"
    warning = phonetic_offset_warning(qc.av_offset, qc.offset_peak, qc.offset_r, qc.speech_frames)
    if warning is not None:
        qc.warnings.append(warning)


@functools.cache
def default_syncnet() -> tuple[str, Any] | None:
    """(name, SyncNet) of the manifest's ``default_syncnet``, or None when none is set.

    Only for QC with ``qc_syncnet`` on, and for ``lipdub eval``: the shipped SyncNet was
    trained on research-only clips (:func:`syncnet_terms`); the default QC never opens it."""
    from lipdub.model.checkpoint import load_manifest
    from lipdub.model.syncnet_file import resolve_syncnet

    name = load_manifest().default_syncnet
    if name is None:
        return None
    log.warning("QC loads SyncNet %s: %s", name, syncnet_terms(name))
    return name, resolve_syncnet(name)


def syncnet_terms(name: str) -> str:
    """The warning a QC that used SyncNet ``name`` carries: the terms of its weights (the
    manifest's ``licence``), so that no one ships its numbers' model by mistake."""
    from lipdub.model.checkpoint import load_manifest

    entry = load_manifest().entries.get(name)
    terms = entry.licence if entry is not None and entry.licence else "unknown terms"
    return (
        f"LSE-C / LSE-D measured with SyncNet {name} (qc_syncnet), whose weights are under: {terms}"
    )


def _aligned(frame: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    return warp_to_crop(frame, similarity_to_template(landmarks, SYNC_CROP), SYNC_CROP)


def _measure_sync(
    qc: DubQC,
    syncnet: tuple[str, Any],
    crops: np.ndarray,
    audio_16k: np.ndarray,
    frames: np.ndarray,
    fps: Fraction,
    speech_frames: int | None,
) -> None:
    """LSE-C, LSE-D and SyncNet's own offset (and its warning, with SyncNet's thresholds)."""
    from lipdub.eval.sync_scoring import SyncNetScorer, av_sync
    from lipdub.model.mel import MelFrontend

    name, net = syncnet
    res = av_sync(
        SyncNetScorer(net), crops, audio_16k, fps, frames[: len(crops)], MelFrontend(net.cfg.mel)
    )
    qc.lse_c, qc.lse_d, qc.syncnet_offset, qc.syncnet = (
        round(res.lse_c, 4),
        round(res.lse_d, 4),
        res.offset,
        name,
    )
    qc.syncnet_offset_peak = round(offset_peak(res.curve), 3)
    warning = offset_warning(qc.syncnet_offset, qc.syncnet_offset_peak, qc.lse_c, speech_frames)
    if warning is not None:
        qc.warnings.append(warning)


class _SeamFlicker:
    """Seam: Sobel edge energy on the blend mask's feathered border, output vs source (1 = no
    visible edge). Flicker: mean frame-to-frame change inside the mask over consecutive silent
    frames, output vs source (1 = as still as the actor; quivering lips give more). Detail: Sobel
    edge energy inside the mask on the frames that are not silent (where the mouth is
    generated), output vs source (1 = as sharp as the picture; a soft, smeared mouth gives much
    less)."""

    def __init__(self, silent: np.ndarray) -> None:
        self.silent = silent
        self.edge_out: list[float] = []
        self.edge_src: list[float] = []
        self.move_out: list[float] = []
        self.move_src: list[float] = []
        self.detail_out: list[float] = []
        self.detail_src: list[float] = []
        self._last: tuple[int, np.ndarray, np.ndarray, np.ndarray] | None = None

    def add(self, i: int, src: np.ndarray, out: np.ndarray, zones: np.ndarray) -> None:
        """Measure shot frame ``i``: ``src`` and ``out`` are the (h, w, 3) RGB pixels of the
        mask's box in the source and the output, ``zones`` the (h, w) :func:`mask_zones` of the
        soft blend mask."""
        a = cv2.cvtColor(src, cv2.COLOR_RGB2GRAY).astype(np.float32)
        b = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).astype(np.float32)
        band = (zones == ZONE_BORDER_OUT) | (zones == ZONE_BORDER_IN)
        inside = zones >= ZONE_BORDER_IN
        speech = i >= len(self.silent) or not self.silent[i]
        seam = band.sum() >= MIN_PIXELS
        detail = speech and inside.sum() >= MIN_PIXELS  # Pauses rest on real frames.
        if seam or detail:  # Each image's edges once, for both measures.
            ea, eb = _edges(a), _edges(b)
            if seam:
                self.edge_src.append(float(ea[band].mean()))
                self.edge_out.append(float(eb[band].mean()))
            if detail:
                self.detail_src.append(float(ea[inside].mean()))
                self.detail_out.append(float(eb[inside].mean()))
        if self._last is not None and self._last[0] == i - 1 and i < len(self.silent):
            _, pa, pb, pin = self._last
            if self.silent[i] and self.silent[i - 1] and pa.shape == a.shape:
                both = inside & pin
                if both.sum() >= MIN_PIXELS:
                    self.move_src.append(float(np.abs(a - pa)[both].mean()))
                    self.move_out.append(float(np.abs(b - pb)[both].mean()))
        self._last = (i, a, b, inside)

    def ratios(self) -> tuple[float | None, float | None, float | None]:
        """(seam, flicker, detail) ratios, output / source (None where nothing was measured)."""
        seam = ratio(self.edge_out, self.edge_src)
        flicker = ratio(self.move_out, self.move_src)
        detail = ratio(self.detail_out, self.detail_src)
        return seam, flicker, detail


def mask_zones(mask: np.ndarray) -> np.ndarray:
    """(h, w) uint8: where each pixel of a soft blend mask lies for QC's measures, all QC reads
    of a mask (a quarter of its float32 bytes, kept for every frame of the shot): 0 outside
    (≤ :data:`BORDER_LOW`), :data:`ZONE_BORDER_OUT` on the feathered border below
    :data:`INSIDE`, :data:`ZONE_BORDER_IN` on the border from :data:`INSIDE` on, 3 at or
    above :data:`BORDER_HIGH`."""
    m = np.asarray(mask)
    zones = (m > BORDER_LOW).astype(np.uint8)
    zones += m >= INSIDE
    zones += m >= BORDER_HIGH
    return zones


def opening_warning(
    opening: np.ndarray,
    loudness_db: np.ndarray,
    own_mouth: np.ndarray | None,
    min_run: int = 1,
) -> str | None:
    """A warning when the rendered mouth is more open on the dub's silent frames than on its
    loud ones (a mouth that follows the wrong audio), else None.

    Arguments:
        opening: (T,) measured opening per frame, IOD (NaN where unmeasured).
        loudness_db: (T,) the dub's loudness per frame.
        own_mouth: (T,) True where the frame shows the actor's own mouth (kept from the source
            or the rest crop): those say nothing about the render and are left out.
        min_run: silent frames count only in silent runs at least this long (a pause, not the
            gap between two words).
    """
    quiet, loud = rendered_openings(opening, loudness_db, own_mouth, min_run)
    if quiet is None or loud is None or quiet <= loud + OPENING_MARGIN:
        return None
    return (
        f"the rendered mouth is more open on the dub's silent frames (rendered_silent_opening "
        f"{quiet} IOD) than on its loud ones (rendered_loud_opening {loud}; more than "
        f"{OPENING_MARGIN} apart): it may follow the wrong audio"
    )


def rendered_openings(
    opening: np.ndarray,
    loudness_db: np.ndarray,
    own_mouth: np.ndarray | None,
    min_run: int = 1,
) -> tuple[float | None, float | None]:
    """Mean opening (IOD, 4 decimals) on the silent and on the loud frames that were rendered
    (not the actor's own mouth); see :func:`opening_warning` for the arguments."""
    n = min(len(opening), len(loudness_db))
    rendered = np.ones(n, bool) if own_mouth is None else ~np.asarray(own_mouth, bool)[:n]
    silent = long_runs(loudness_db[:n] < SILENT_DB, min_run)
    speech = loudness_db[:n] >= LOUD_DB
    quiet = _mean(opening[:n][silent & rendered])
    loud = _mean(opening[:n][speech & rendered])
    return (
        None if quiet is None else round(quiet, 4),
        None if loud is None else round(loud, 4),
    )


def _mean(values: np.ndarray) -> float | None:
    """Mean of the finite values, None when there are none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def _edges(gray: np.ndarray) -> np.ndarray:
    return np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))


def before_frame(audio_16k: np.ndarray, frame_count: int, fps: Fraction) -> int:
    """The shot frame QC shows before and after (thumbnails): the dub's loudest. The render
    keeps the source's :func:`thumbnail` of it while encoding (``before_thumb``)."""
    return _thumb_at(loudness_per_frame(audio_16k, frame_count, fps))


def _thumb_at(loud: np.ndarray) -> int:
    return int(np.argmax(loud)) if loud.size else 0


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """``frame`` (RGB) scaled to :data:`THUMB_WIDTH` wide, as QC's PNGs show it."""
    h, w = frame.shape[:2]
    return cv2.resize(
        frame, (THUMB_WIDTH, max(1, round(h * THUMB_WIDTH / w))), interpolation=cv2.INTER_AREA
    )


def _write_thumb(small: np.ndarray, path: Path) -> None:
    cv2.imwrite(str(path), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
