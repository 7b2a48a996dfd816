"""Analysis of one shot: cuts, faces, landmarks, tracks, actors — cached by content.

One streaming decode of the shot feeds the cut detector and, a few frames behind it, the face
pass (:mod:`lipdub.analysis.facepass`); the tracker closes the tracks, identity names them.
Nothing here is fatal for a face-less or damaged shot: the problems go into ``warnings``.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lipdub.analysis import cache
from lipdub.analysis.blazeface import load_blazeface
from lipdub.analysis.cuts import SceneDetectShots
from lipdub.analysis.detection import smallest_face_px
from lipdub.analysis.facepass import FacePass
from lipdub.analysis.identity import ActorRefs, assign_actors, build_gallery
from lipdub.analysis.landmarking import FacesWithLandmarker
from lipdub.analysis.masks import UShapePlanner
from lipdub.analysis.mesh import load_mesh_landmarker
from lipdub.analysis.protocols import FaceDetector, ShotDetector
from lipdub.analysis.records import ShotAnalysis
from lipdub.analysis.settings import AnalysisSettings
from lipdub.analysis.tracking import IouAppearanceTracker
from lipdub.errors import MediaError
from lipdub.media.read import open_video

log = logging.getLogger(__name__)

#: After this many undecodable frames the rest of the shot is given up (with a warning).
MAX_DECODE_ERRORS = 10

ProgressFn = Callable[[int, int], None]


#: The stages an analysis runs, in order.
STAGE_NAMES = ("shots", "faces", "landmarker", "tracker", "masks")


def default_stages(
    settings: AnalysisSettings, names: Sequence[str] = STAGE_NAMES
) -> dict[str, Any]:
    """The built-in stage objects named (scenedetect, blazeface, mediapipe, iou-appearance,
    u-shape), built only when asked for: a stage a caller brings loads no default model."""
    makers: dict[str, Callable[[], Any]] = {
        "shots": lambda: SceneDetectShots(settings),
        "faces": load_blazeface,
        "landmarker": load_mesh_landmarker,
        "tracker": lambda: IouAppearanceTracker(settings),
        "masks": lambda: UShapePlanner(settings),
    }
    return {name: makers[name]() for name in names}


def detect_cuts(
    source: Path, start: int, stop: int | None, detector: ShotDetector, conform: bool = False
) -> list[int]:
    """First frames of new shots in ``[start, stop)`` of ``source`` (stop None = end of file).

    With ``conform`` the frames are those of the source conformed onto its constant-rate grid
    (``conform_vfr``), the numbering the render uses; the detector is asked for it only then, so
    a plugin written before the keyword existed still serves constant-rate sources.
    """
    if stop is None:
        with open_video(source, conform) as video:
            stop = video.info.frame_count
    if conform:
        return detector.detect(Path(source), start, stop, conform=True)
    return detector.detect(Path(source), start, stop)


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
    *,
    conform: bool = False,
) -> ShotAnalysis:
    """Analyse frames ``[start, stop)`` of ``source``; see the module docstring.

    Arguments:
        source: the video file.
        start: first frame (absolute).
        stop: one past the last frame; None = end of file.
        actors: name -> references; tracks are named after the nearest actor or "unknown".
        settings: analysis settings (defaults when None).
        stages: built stage objects by stage name (shots, faces, landmarker, tracker, masks);
            missing or None entries use the built-in defaults.
        cache_dir: the project's cache folder; None = no caching.
        progress: called as ``progress(frames_done, frames_total)``.
        conform: read a variable-frame-rate source onto its constant-rate grid, as the render
            does with ``conform_vfr`` (see :func:`lipdub.media.read.open_video`).

    Raises:
        MediaError: the source is missing or unreadable, or the range is outside it.
    """
    source = Path(source)
    settings = settings or AnalysisSettings()
    given = {k: v for k, v in (stages or {}).items() if v is not None}
    built = {**default_stages(settings, [n for n in STAGE_NAMES if n not in given]), **given}
    detector: FaceDetector = FacesWithLandmarker(built["faces"], built["landmarker"])
    with open_video(source, conform) as video:
        info = video.info
        stop = info.frame_count if stop is None else stop
        if not 0 <= start < stop <= info.frame_count:
            raise MediaError(
                f"{source}: shot range [{start}, {stop}) is outside its {info.frame_count} frames"
            )
        names = _stage_names(built)
        if conform:
            names["conform"] = "vfr"
        if info.rotation:  # Frames are analysed upright: a key of their own.
            names["rotation"] = str(info.rotation)
        digest, entry = "", None
        if cache_dir is not None:
            digest = cache.file_hash(source, cache_dir)
            key = cache.analysis_key(digest, start, stop, settings.key(), names)
            entry = cache.analysis_dir(cache_dir, key)
        result = _load_cached(entry)
        if result is None:
            result = _analyze(video, source, start, stop, settings, built, progress, conform)
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
    conform: bool = False,
) -> ShotAnalysis:
    t0 = time.perf_counter()
    info = video.info
    warnings: list[str] = []
    shots = stages["shots"]
    session = shots.session(info.fps) if hasattr(shots, "session") else None
    cuts = [] if session is not None else detect_cuts(source, start, stop, shots, conform)
    detector = FacesWithLandmarker(stages["faces"], stages["landmarker"])
    face_pass = FacePass(detector, stages["tracker"], settings, info.width, info.height)
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


def _coverage_notes(faces: np.ndarray, start: int, face_pass: FacePass, info: Any) -> list[str]:
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
