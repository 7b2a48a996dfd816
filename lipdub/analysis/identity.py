"""Which actor is this face? dlib 128-d descriptors against each actor's reference footage.

An actor's *gallery* is the set of descriptors of their face in their reference images and in
frames sampled from their footage. A track is compared with every actor: the distance to an
actor is the median, over the track's descriptors, of the distance to the nearest gallery
descriptor (the median shrugs off a few blurred or half-turned frames). The nearest actor wins if
that distance is under the threshold — dlib's customary 0.6, at which its ResNet scores 99.38% on
LFW — otherwise the track is "unknown". Two faces on screen at the same time cannot be one actor:
the farther of the two is set to "unknown".
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from lipdub.analysis import cache
from lipdub.analysis.detection import detect_in_frame, largest
from lipdub.analysis.protocols import FaceDetector
from lipdub.analysis.records import UNKNOWN, FaceTrack
from lipdub.analysis.settings import AnalysisSettings
from lipdub.errors import MediaError
from lipdub.media.read import open_video

log = logging.getLogger(__name__)

#: Suffixes read as still images (cv2.imread); anything else is opened as a video.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

#: Actor name -> (K, 128) float32 reference descriptors.
Gallery = dict[str, np.ndarray]


class ActorRefs(Protocol):
    """What identity needs to know of an actor (the config's actor record satisfies it).

    Read-only members, so that the config's frozen record satisfies it.
    """

    @property
    def name(self) -> str: ...
    @property
    def footage(self) -> tuple[Path, ...]: ...  # Videos of the actor alone on screen.
    @property
    def references(self) -> tuple[Path, ...]: ...  # Still images of the actor's face.


def image_descriptors(
    image: np.ndarray, detector: FaceDetector, settings: AnalysisSettings
) -> np.ndarray:
    """(1, 128) descriptor of the largest face in an RGB image, or (0, 128) when none."""
    face = largest(detect_in_frame(image, detector, settings))
    if face is None:
        return np.zeros((0, 128), np.float32)
    lm = detector.landmarks(image, [face[0]])
    return detector.descriptors(image, list(lm))


def reference_descriptors(
    path: Path, detector: FaceDetector, settings: AnalysisSettings, cache_dir: Path | None = None
) -> np.ndarray:
    """(K, 128) descriptors of one reference file: an image, or frames sampled from a video.

    Raises:
        MediaError: the file is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: actor reference not found")
    cached = None
    if cache_dir is not None:
        digest = cache.file_hash(path, cache_dir)
        cached = cache.gallery_path(cache_dir, digest, detector.name, settings.reference_frames)
        if cached.is_file():
            with np.load(cached, allow_pickle=False) as z:
                return z["descriptors"]
    if path.suffix.lower() in IMAGE_SUFFIXES:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise MediaError(f"{path}: not a readable image")
        out = image_descriptors(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), detector, settings)
    else:
        out = _footage_descriptors(path, detector, settings)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cached, descriptors=out)
    return out


def _footage_descriptors(
    path: Path, detector: FaceDetector, settings: AnalysisSettings
) -> np.ndarray:
    """Descriptors of the largest face on ``reference_frames`` frames spread over a video."""
    found = []
    with open_video(path, conform=True) as video:  # Only sampled: a VFR reference is fine.
        n = video.info.frame_count
        count = min(n, settings.reference_frames)
        picks = np.unique(np.linspace(0, n - 1, count).round().astype(int))
        for f in picks:
            frame = next(video.frames(int(f), int(f) + 1))
            found.append(image_descriptors(frame, detector, settings))
    return np.concatenate(found) if found else np.zeros((0, 128), np.float32)


def build_gallery(
    actors: Mapping[str, ActorRefs] | Sequence[ActorRefs],
    detector: FaceDetector,
    settings: AnalysisSettings,
    cache_dir: Path | None = None,
) -> tuple[Gallery, list[str]]:
    """Descriptors of every actor's references and footage; warnings for what gave none."""
    gallery: Gallery = {}
    warnings: list[str] = []
    refs = list(actors.values()) if isinstance(actors, Mapping) else list(actors)
    for actor in refs:
        parts = []
        for path in (*actor.references, *actor.footage):
            try:
                d = reference_descriptors(Path(path), detector, settings, cache_dir)
            except MediaError as exc:
                warnings.append(f"actor {actor.name}: {exc}")
                continue
            if len(d) == 0:
                warnings.append(f"actor {actor.name}: no face found in {path}")
            parts.append(d)
        stacked = np.concatenate(parts) if parts else np.zeros((0, 128), np.float32)
        if len(stacked):
            gallery[actor.name] = stacked.astype(np.float32)
        else:
            warnings.append(f"actor {actor.name}: no usable face in the references; never matched")
    return gallery, warnings


def actor_distances(descriptors: np.ndarray, gallery: Gallery) -> dict[str, float]:
    """Median over ``descriptors`` of the distance to each actor's nearest reference."""
    d = np.asarray(descriptors, np.float32).reshape(-1, 128)
    out: dict[str, float] = {}
    if len(d) == 0:
        return out
    for name, refs in gallery.items():
        dist = np.linalg.norm(d[:, None, :] - refs[None, :, :], axis=-1).min(axis=1)
        out[name] = float(np.median(dist))
    return out


def identify(descriptors: np.ndarray, gallery: Gallery, threshold: float) -> tuple[str, float]:
    """The nearest actor and its distance, or ``("unknown", distance)`` above ``threshold``."""
    dists = actor_distances(descriptors, gallery)
    if not dists:
        return UNKNOWN, float("inf")
    name = min(dists, key=dists.__getitem__)
    return (name if dists[name] < threshold else UNKNOWN), dists[name]


def assign_actors(tracks: Sequence[FaceTrack], gallery: Gallery, threshold: float) -> list[str]:
    """Set ``actor`` and ``actor_distance`` on every track; returns warnings.

    Tracks on screen at the same time get different actors: a clash goes to the nearer track.
    """
    warnings = []
    for t in tracks:
        t.actor, t.actor_distance = identify(t.descriptors, gallery, threshold)
        if len(t.descriptors) == 0:
            warnings.append(f"track {t.track_id}: no face descriptor taken; actor unknown")
    for t in sorted(tracks, key=lambda t: t.actor_distance):
        if t.actor == UNKNOWN:
            continue
        for other in tracks:
            overlap = other is not t and other.actor == t.actor
            if overlap and _overlaps(t, other) and other.actor_distance >= t.actor_distance:
                warnings.append(
                    f"tracks {t.track_id} and {other.track_id} both look like {t.actor} at the "
                    f"same time; track {other.track_id} set to {UNKNOWN}"
                )
                other.actor = UNKNOWN
    return warnings


def _overlaps(a: FaceTrack, b: FaceTrack) -> bool:
    return bool(a.frames[0] <= b.frames[-1] and b.frames[0] <= a.frames[-1])
