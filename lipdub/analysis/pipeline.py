"""Analysis of one shot: cuts, faces, landmarks, tracks, actors — cached by content.

One streaming pass over the shot's frames. The face detector runs on every ``detect_every``-th
frame (and on the first frame after a cut) on a resized copy; between those frames each face is
carried by its landmarks: the box it was detected with is kept relative to its landmarks and
re-placed around the previous frame's landmarks, and the 68 landmarks are fitted again on every
frame at full resolution. A carried face that the next detector passes do not confirm
``max_missed_detections`` times is dropped (and its unconfirmed frames trimmed by the tracker).
Nothing here is fatal for a face-less or damaged shot: the problems go into ``warnings``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from lipdub.analysis import cache
from lipdub.analysis.detection import detect_in_frame, smallest_face_px
from lipdub.analysis.faces import DlibFaceDetector
from lipdub.analysis.identity import ActorRefs, assign_actors, build_gallery
from lipdub.analysis.masks import UShapePlanner
from lipdub.analysis.protocols import FaceDetector, ShotDetector, Tracker
from lipdub.analysis.records import FaceObservation, ShotAnalysis
from lipdub.analysis.settings import AnalysisSettings
from lipdub.analysis.shots import SceneDetectShots
from lipdub.analysis.tracking import IouAppearanceTracker, appearance, iou
from lipdub.errors import MediaError
from lipdub.media.read import open_video

log = logging.getLogger(__name__)

#: A detection confirms a carried face when their boxes overlap at least this much.
CONFIRM_IOU = 0.3
#: Weight of a new detection's box in a followed face's box geometry.
REL_MOMENTUM = 0.1
#: Two faces of one frame overlapping more than this are one face (the detected one is kept).
DUPLICATE_IOU = 0.5
#: A carried face is dropped when less than this fraction of its box is inside the frame.
MIN_INSIDE = 0.6
#: After this many undecodable frames the rest of the shot is given up (with a warning).
MAX_DECODE_ERRORS = 10

ProgressFn = Callable[[int, int], None]


def default_stages(settings: AnalysisSettings) -> dict[str, Any]:
    """The built-in stage objects: scenedetect, dlib-hog, iou-appearance, u-shape."""
    return {
        "shots": SceneDetectShots(settings),
        "faces": DlibFaceDetector("hog", settings.detect_upsample),
        "tracker": IouAppearanceTracker(settings),
        "masks": UShapePlanner(settings),
    }


def detect_cuts(source: Path, start: int, stop: int | None, detector: ShotDetector) -> list[int]:
    """First frames of new shots in ``[start, stop)`` of ``source`` (stop None = end of file)."""
    if stop is None:
        with open_video(source) as video:
            stop = video.info.frame_count
    return detector.detect(Path(source), start, stop)


@dataclass
class _Face:
    """A face being followed: its box, whether the detector saw it, and how the box sits.

    ``rel`` is the box relative to the landmarks' centre and extent, fixed when the face is first
    detected and nudged towards later detections; between detections the box is re-placed around
    the landmarks with it, so the shape predictor always sees the face framed the same way (a
    box that jumped to each new detection would make the landmarks jump every few frames).
    """

    box: np.ndarray
    detected: bool
    score: float = 0.0
    misses: int = 0  # Detector passes in a row that did not confirm it.
    checked: bool = False  # A detector pass ran on this frame.
    rel: np.ndarray | None = None

    def follow(self, landmarks: np.ndarray) -> _Face:
        """The same face on the next frame, boxed around ``landmarks`` (this frame's)."""
        centre, scale = _frame_of(landmarks)
        if self.rel is None:
            self.rel = (np.asarray(self.box, np.float64) - np.tile(centre, 2)) / scale
        box = np.tile(centre, 2) + self.rel * scale
        return _Face(box, False, 0.0, self.misses, rel=self.rel)

    def confirm(self, det_box: np.ndarray, score: float, landmarks: np.ndarray) -> None:
        """A detection overlaps this face: reset misses, nudge ``rel`` towards its box."""
        centre, scale = _frame_of(landmarks)
        target = (np.asarray(det_box, np.float64) - np.tile(centre, 2)) / scale
        self.rel = (1 - REL_MOMENTUM) * self.rel + REL_MOMENTUM * target
        self.detected, self.score, self.misses = True, score, 0


def _frame_of(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    lm = np.asarray(landmarks, np.float64)
    return lm.mean(axis=0), max(float(np.ptp(lm, axis=0).max()), 1.0)


class _FacePass:
    """The per-frame face work of one shot (detector, carry, landmarks, tracker, descriptors)."""

    def __init__(
        self,
        detector: FaceDetector,
        tracker: Tracker,
        settings: AnalysisSettings,
        width: int,
        height: int,
    ) -> None:
        self.detector, self.tracker, self.s = detector, tracker, settings
        self.width, self.height = width, height
        self.faces: list[tuple[_Face, np.ndarray]] = []  # Previous frame's faces and landmarks.
        self.small: list[float] = []  # Sides of detections ignored as too small.
        self.desc_last: dict[int, int] = {}
        self.desc_count: dict[int, int] = {}
        self.detector_seconds = 0.0

    def step(self, i: int, frame: np.ndarray, new_shot: bool) -> None:
        """Find, carry, fit and track the faces of shot frame ``i``."""
        s = self.s
        if new_shot:
            self.faces = []
        carried = [f.follow(lm) for f, lm in self.faces]
        prev_lms = [lm for _, lm in self.faces]
        cands = carried
        if new_shot or i % s.detect_every == 0:
            t0 = time.perf_counter()
            dropped: list[float] = []
            dets = detect_in_frame(frame, self.detector, s, dropped)
            self.detector_seconds += time.perf_counter() - t0
            self.small += dropped
            pairs = self._match([c.box for c in carried], [d[0] for d in dets])
            cands = []
            for k, c in enumerate(carried):
                c.checked = True
                if k in pairs:
                    c.confirm(dets[pairs[k]][0], dets[pairs[k]][1], prev_lms[k])
                    cands.append(c)
                elif c.misses + 1 <= s.max_missed_detections:
                    c.misses += 1
                    cands.append(c)
            taken = set(pairs.values())
            cands += [
                _Face(b, True, sc, checked=True) for j, (b, sc) in enumerate(dets) if j not in taken
            ]
        cands = _dedupe([c for c in cands if self._usable(c.box)])
        lms = self.detector.landmarks(frame, [c.box for c in cands]) if cands else []
        obs = [
            FaceObservation(
                box=c.box,
                landmarks=lm,
                score=c.score,
                detected=c.detected,
                missed=c.checked and not c.detected,
                appearance=appearance(frame, c.box),
            )
            for c, lm in zip(cands, lms, strict=True)
        ]
        ids = self.tracker.update(i, obs, new_shot)
        self._descriptors(i, frame, obs, ids)
        self.faces = list(zip(cands, lms, strict=True))

    def _match(self, carried: list[np.ndarray], dets: list[np.ndarray]) -> dict[int, int]:
        """Carried face index -> index of the detection that confirms it."""
        if not carried or not dets:
            return {}
        cost = np.array([[1.0 - iou(c, d) for d in dets] for c in carried])
        rows, cols = linear_sum_assignment(cost)
        ok = zip(rows, cols, strict=True)
        return {int(r): int(c) for r, c in ok if cost[r, c] <= 1.0 - CONFIRM_IOU}

    def _usable(self, box: np.ndarray) -> bool:
        side = min(box[2] - box[0], box[3] - box[1])
        if side < self.s.min_face_px:
            return False
        ix = max(0.0, min(box[2], self.width) - max(box[0], 0.0))
        iy = max(0.0, min(box[3], self.height) - max(box[1], 0.0))
        return ix * iy >= MIN_INSIDE * (box[2] - box[0]) * (box[3] - box[1])

    def _descriptors(
        self, i: int, frame: np.ndarray, obs: list[FaceObservation], ids: list[int]
    ) -> None:
        s = self.s
        want = [
            (o, t)
            for o, t in zip(obs, ids, strict=True)
            if o.detected
            and self.desc_count.get(t, 0) < s.max_descriptors
            and i - self.desc_last.get(t, -(10**9)) >= s.descriptor_every
        ]
        if not want:
            return
        descs = self.detector.descriptors(frame, [o.landmarks for o, _ in want])
        for (o, t), d in zip(want, descs, strict=True):
            o.descriptor = d
            self.desc_last[t] = i
            self.desc_count[t] = self.desc_count.get(t, 0) + 1


def _dedupe(cands: list[_Face]) -> list[_Face]:
    """Drop faces that overlap a better one (detected before carried, then by score)."""
    kept: list[_Face] = []
    for c in sorted(cands, key=lambda c: (not c.detected, -c.score)):
        if all(iou(c.box, k.box) <= DUPLICATE_IOU for k in kept):
            kept.append(c)
    return kept


def _stage_names(stages: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(getattr(v, "name", type(v).__name__)) for k, v in stages.items() if k != "masks"}


def analyze_shot(
    source: Path,
    start: int = 0,
    stop: int | None = None,
    actors: Mapping[str, ActorRefs] | None = None,
    settings: AnalysisSettings | None = None,
    stages: Mapping[str, object] | None = None,
    cache_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> ShotAnalysis:
    """Analyse frames ``[start, stop)`` of ``source``; see the module docstring.

    Arguments:
        source: the video file.
        start: first frame (absolute).
        stop: one past the last frame; None = end of file.
        actors: name -> references; tracks are named after the nearest actor or "unknown".
        settings: analysis settings (defaults when None).
        stages: built stage objects by stage name (shots, faces, tracker, masks); missing or
            None entries use the built-in defaults.
        cache_dir: the project's cache folder; None = no caching.
        progress: called as ``progress(frames_done, frames_total)``.

    Raises:
        MediaError: the source is missing or unreadable, or the range is outside it.
    """
    source = Path(source)
    settings = settings or AnalysisSettings()
    built = default_stages(settings)
    built.update({k: v for k, v in (stages or {}).items() if v is not None})
    detector: FaceDetector = built["faces"]
    with open_video(source) as video:
        info = video.info
        stop = info.frame_count if stop is None else stop
        if not 0 <= start < stop <= info.frame_count:
            raise MediaError(
                f"{source}: shot range [{start}, {stop}) is outside its {info.frame_count} frames"
            )
        names = _stage_names(built)
        digest, entry = "", None
        if cache_dir is not None:
            digest = cache.file_hash(source, cache_dir)
            key = cache.analysis_key(digest, start, stop, settings.key(), names)
            entry = cache.analysis_dir(cache_dir, key)
        result = _load_cached(entry)
        if result is None:
            result = _analyze(video, source, start, stop, settings, built, progress)
            result.source_hash, result.stages = digest, names
            if entry is not None:
                result.save(entry)
        elif progress is not None:
            progress(stop - start, stop - start)
    if actors:
        gallery, notes = build_gallery(actors, detector, settings, cache_dir)
        result.warnings += notes
        result.warnings += assign_actors(result.tracks, gallery, settings.identity_threshold)
    return result


def _load_cached(entry: Path | None) -> ShotAnalysis | None:
    if entry is None or not (entry / "analysis.json").is_file():
        return None
    try:
        result = ShotAnalysis.load(entry)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("%s: unreadable cache entry (%s); analysing again", entry, exc)
        return None
    log.info("analysis of %s [%d, %d) found in the cache", result.source, result.start, result.stop)
    result.seconds = 0.0
    return result


def _analyze(
    video: Any,
    source: Path,
    start: int,
    stop: int,
    settings: AnalysisSettings,
    stages: Mapping[str, Any],
    progress: ProgressFn | None,
) -> ShotAnalysis:
    t0 = time.perf_counter()
    info = video.info
    warnings: list[str] = []
    shots = stages["shots"]
    session = shots.session(info.fps) if hasattr(shots, "session") else None
    cuts = [] if session is not None else detect_cuts(source, start, stop, shots)
    face_pass = _FacePass(stages["faces"], stages["tracker"], settings, info.width, info.height)
    total = stop - start
    # The face pass runs `lag` frames behind the cut detector, so it knows a cut before it.
    lag = session.lag if session is not None else 0
    pending: deque[tuple[int, np.ndarray]] = deque()
    done = 0

    def advance(until: int) -> None:
        nonlocal done
        known = set(session.cuts if session is not None else cuts)
        while pending and pending[0][0] < until:
            i, frame = pending.popleft()
            face_pass.step(i, frame, new_shot=i == 0 or start + i in known)
            done += 1
            if progress is not None:
                progress(done, total)

    for i, frame in _frames(video, start, stop, warnings):
        if session is not None:
            session.push(start + i, frame)
        pending.append((i, frame))
        advance(i - lag + 1)
    if session is not None:
        cuts = [c for c in session.finish() if start < c < stop]
    advance(total)
    tracks, notes = stages["tracker"].finish(float(info.fps))
    warnings += notes
    faces = np.zeros(total, np.int16)
    for t in tracks:
        faces[t.frames] += 1
    warnings += _coverage_notes(faces, start, face_pass, info)
    elapsed = time.perf_counter() - t0
    log.info(
        "%s [%d, %d): %d track(s), faces on %.1f%% of frames, %.1f fps (detector %.1f s)",
        source,
        start,
        stop,
        len(tracks),
        100 * np.count_nonzero(faces) / max(total, 1),
        total / max(elapsed, 1e-9),
        face_pass.detector_seconds,
    )
    return ShotAnalysis(
        source=source,
        start=start,
        stop=stop,
        fps=info.fps,
        width=info.width,
        height=info.height,
        cuts=cuts,
        tracks=tracks,
        warnings=warnings,
        faces_per_frame=faces,
        settings_key=settings.key(),
        seconds=elapsed,
    )


def _frames(
    video: Any, start: int, stop: int, warnings: list[str]
) -> Iterator[tuple[int, np.ndarray]]:
    """(shot frame number, RGB frame), skipping frames that fail to decode (with a warning)."""
    i, errors = 0, 0
    while i < stop - start:
        try:
            for frame in video.frames(start + i, stop):
                yield i, frame
                i += 1
        except MediaError as exc:
            errors += 1
            warnings.append(f"frame {start + i} skipped: {exc}")
            if errors >= MAX_DECODE_ERRORS:
                warnings.append(f"gave up at frame {start + i} after {errors} decode errors")
                return
            i += 1


def _coverage_notes(faces: np.ndarray, start: int, face_pass: _FacePass, info: Any) -> list[str]:
    notes = []
    s = face_pass.s
    if face_pass.small:
        notes.append(
            f"{len(face_pass.small)} detection(s) smaller than min_face_px={s.min_face_px} were "
            f"ignored (largest {max(face_pass.small):.0f} px): too small to dub"
        )
    empty = np.flatnonzero(faces == 0)
    if len(empty) == len(faces):
        smallest = smallest_face_px(info.width, info.height, face_pass.detector, s)
        notes.append(
            f"no face found in frames [{start}, {start + len(faces)}) (the detector finds faces "
            f"from about {smallest:.0f} px at these settings)"
        )
    elif len(empty):
        notes.append(
            f"no face on {len(empty)} of {len(faces)} frames (first at frame {start + empty[0]})"
        )
    return notes
