"""The knobs of the analysis step, resolved once into one frozen record.

Some fields are the options of a built-in analysis stage (:data:`STAGE_FIELDS`: the tracker's
``iou_threshold``, the mask planner's ``mask_*``...) and are set in that stage's block
(``stage_options.tracker``); the rest (:data:`RUN_FIELDS`: detection cadence, identity, crop size)
belong to the analysis run whatever plugins serve its stages, and are set in the ``analysis``
block. The config refuses a key that is neither.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Bumped whenever the stored analysis changes meaning, so old cache entries are not reused.
ANALYSIS_VERSION = 1

#: The fields each built-in analysis stage reads: its declared options (the plugins in
#: lipdub.plugins offer exactly these), set in ``stage_options.<stage>``.
STAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "shots": ("shot_threshold", "shot_min_content", "shot_min_frames"),
    "faces": ("detect_upsample",),
    "tracker": (
        "iou_threshold",
        "appearance_weight",
        "max_gap",
        "min_track_frames",
        "min_track_detections",
        "min_track_score",
        "max_descriptors",
        "smooth_min_cutoff",
        "smooth_beta",
        "smooth_d_cutoff",
        "smooth_mouth_min_cutoff",
    ),
    "masks": (
        "mask_side_margin",
        "mask_chin_margin",
        "mask_open_gain",
        "mask_yaw_gain",
        "mask_top",
        "mask_soften_px",
    ),
}
#: Fields that do not change what is stored in the cache: identity is re-evaluated from the stored
#: descriptors on every load, and masks are planned from the stored landmarks when needed.
_NOT_IN_KEY = frozenset({"identity_threshold", *STAGE_FIELDS["masks"]})


@dataclass(frozen=True)
class AnalysisSettings:
    """Everything that shapes the analysis of a shot; defaults suit talking-head close-ups.

    Sizes in ``*_px`` are source pixels; margins named ``mask_*`` are in units of the
    inter-ocular distance (IOD, between the eye centres) so they do not depend on the crop size.
    """

    # Detection.
    detect_every: int = 5  # Run the face detector on every Nth frame; landmarks carry between.
    # With a landmarker that scores its faces (the mesh's presence score, 0..1): the whole frame
    # is searched every Nth frame, the detect_every frames between confirm the followed faces in
    # a region around each, and a face scored below redetect_below has the whole frame searched
    # on the next frame. 5 (= detect_every) by default: at 10 the analysis is ~10% faster at
    # 1080p but a face HOG misses on a pass is found up to 10 frames later (bench/results.md).
    detect_every_scored: int = 5
    redetect_below: float = 0.5
    detect_max_side: int = 1280  # Frames larger than this are downscaled for the detector.
    detect_min_side: int = 320  # Frames with a smaller short side are upscaled for it.
    detect_upsample: int = 0  # Extra 2x pyramid levels inside the detector (finds smaller faces).
    min_face_px: int = 64  # Faces with a smaller box side are ignored (too small to dub).
    max_missed_detections: int = 3  # Detector passes a carried face may miss before it is dropped.
    cnn_fallback: bool = True  # Second look with dlib's mmod CNN where the detector misses.
    fallback_every: int = 25  # Frames between whole-frame CNN looks while no face is known.
    # Tracking.
    iou_threshold: float = 0.3  # Smallest box overlap that links a face to a track.
    appearance_weight: float = 0.3  # Weight of colour-histogram similarity in the link cost.
    max_gap: int = 12  # Missing frames inside a track bridged by interpolation (~0.5 s).
    min_track_frames: int = 5  # Shorter tracks are dropped (with a warning).
    min_track_detections: int = 2  # Tracks the detector found fewer times are dropped (a false
    # hit is rarely found twice; a real face is found on every pass).
    min_track_score: float = 0.2  # Tracks whose median detector score is lower are dropped:
    # dlib HOG scores real faces 0.45+ (5th percentile on the shared clips), face-like patterns
    # (the demo's mission patch) near 0; mmod hits are kept only from 0.2 anyway.
    # Landmark smoothing: One Euro filter (Casiez et al., CHI 2012), run forward and backward.
    smooth_min_cutoff: float = 1.0  # Hz; lower = steadier still faces.
    smooth_beta: float = 1.5  # Speed coefficient (per IOD/s); higher = less lag on motion.
    smooth_d_cutoff: float = 1.0  # Hz; cutoff of the speed estimate.
    smooth_mouth_min_cutoff: float = 6.0  # Hz; mouth and jaw points follow speech.
    # Identity.
    identity_threshold: float = 0.6  # dlib's customary Euclidean distance for "same person".
    descriptor_every: int = 50  # Frames between face descriptors taken on one track (2 s at 25
    # fps; was 25: one costs 40-80 ms on CPU, as much as 3-4 frames of the rest of the analysis).
    max_descriptors: int = 12  # Descriptors kept per track.
    reference_frames: int = 12  # Frames sampled from each actor footage file.
    # Shots (PySceneDetect AdaptiveDetector).
    shot_threshold: float = 3.0  # Adaptive ratio of a frame's change to its neighbours'.
    shot_min_content: float = 15.0  # Smallest absolute content change of a cut.
    shot_min_frames: int = 15  # Shortest shot (frames); PySceneDetect's default.
    # Alignment and masks.
    crop_size: int = 256  # Side of the aligned crop (256, or 128 for the CPU config).
    mask_side_margin: float = 0.15  # Outward margin of the mask beyond the jaw line.
    mask_chin_margin: float = 0.35  # Margin below the chin.
    mask_open_gain: float = 0.8  # Extra chin margin per unit of mouth opening (lip gap / IOD).
    mask_yaw_gain: float = 1.0  # Extra side margin per unit of yaw on the far side.
    mask_top: float = 0.5  # Top edge between the eye line (0) and the nose tip (1).
    mask_soften_px: float = 2.0  # Edge softening of the crop mask at 256 (scaled with size).

    def __post_init__(self) -> None:
        positive = (
            "detect_every",
            "detect_every_scored",
            "detect_max_side",
            "crop_size",
            "descriptor_every",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"analysis setting {name} must be >= 1")
        if not 0.0 < self.iou_threshold <= 1.0:
            raise ValueError("analysis setting iou_threshold must be in (0, 1]")
        if self.identity_threshold <= 0:
            raise ValueError("analysis setting identity_threshold must be > 0")

    def key(self) -> str:
        """A stable hash of the settings that change the stored analysis (for the cache key)."""
        fields = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in _NOT_IN_KEY
        }
        fields["_version"] = ANALYSIS_VERSION
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_options(self) -> dict[str, object]:
        """The settings as a plain mapping, the options a stage factory receives."""
        return dataclasses.asdict(self)

    def options(self, *names: str) -> dict[str, object]:
        """The values of the named fields (a stage's option defaults)."""
        return {n: getattr(self, n) for n in names}

    @classmethod
    def from_options(cls, options: AnalysisSettings | Mapping[str, Any] | None) -> AnalysisSettings:
        """Build settings from a mapping, ignoring keys that are not fields (stage options)."""
        if isinstance(options, AnalysisSettings):
            return options
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(options or {}).items() if k in names})


#: The fields of the analysis run itself (the ``analysis`` block): read by the face pass,
#: identity and alignment, whichever plugins serve the stages.
RUN_FIELDS: tuple[str, ...] = tuple(
    f.name
    for f in dataclasses.fields(AnalysisSettings)
    if not any(f.name in names for names in STAGE_FIELDS.values())
)
