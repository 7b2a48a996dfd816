"""What the analysis of a shot produces: face observations, face tracks and the shot record.

A :class:`ShotAnalysis` is stored as ``analysis.json`` (scalars, lists, warnings) beside
``tracks.npz`` (arrays), never as a pickle, so a cache entry can be read by any tool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

#: Version of the on-disk layout written by :meth:`ShotAnalysis.save`.
FORMAT_VERSION = 1
#: Name given to a track whose face matches no actor.
UNKNOWN = "unknown"
#: Landmark indices (iBUG 300-W 68-point scheme) used throughout the analysis.
LEFT_EYE = slice(36, 42)  # The subject's right eye, on the image's left.
RIGHT_EYE = slice(42, 48)
EYE_CORNERS = (36, 39, 42, 45)
MOUTH = slice(48, 68)
JAW = slice(0, 17)


@dataclass
class FaceObservation:
    """One face in one frame, before tracking (frame pixels)."""

    box: np.ndarray  # (4,) float x0, y0, x1, y1.
    landmarks: np.ndarray  # (68, 2) float32.
    score: float = 0.0  # Detector confidence (0 when carried from the previous frame).
    detected: bool = True  # True when the detector found it on this frame.
    missed: bool = False  # True when a detector pass on this frame did not confirm it.
    appearance: np.ndarray | None = None  # Colour histogram used to link it to a track.
    descriptor: np.ndarray | None = None  # (128,) dlib face descriptor, taken on some frames.


@dataclass
class FaceTrack:
    """One face followed through a shot; frames are counted from the shot's first frame."""

    track_id: int  # 0.. in order of first appearance within the shot.
    frames: np.ndarray  # (T,) int, increasing and contiguous (gaps bridged).
    landmarks: np.ndarray  # (T, 68, 2) float32, smoothed, frame pixels.
    boxes: np.ndarray  # (T, 4) float32 x0, y0, x1, y1.
    raw_landmarks: np.ndarray | None = None  # (T, 68, 2) float32 before smoothing.
    detected: np.ndarray | None = None  # (T,) bool: observed (True) or bridged (False).
    descriptors: np.ndarray = field(default_factory=lambda: np.zeros((0, 128), np.float32))
    actor: str = UNKNOWN  # Actor name, or "unknown".
    actor_distance: float = float("inf")  # Descriptor distance to that actor's references.

    @property
    def descriptor(self) -> np.ndarray:
        """(128,) mean face descriptor of the track (zeros when none was taken)."""
        if len(self.descriptors) == 0:
            return np.zeros(128, np.float32)
        return self.descriptors.mean(axis=0).astype(np.float32)

    def __len__(self) -> int:
        return len(self.frames)

    def at(self, frame: int) -> int | None:
        """Index into the arrays of shot frame ``frame``, or None when the track lacks it."""
        i = frame - int(self.frames[0]) if len(self.frames) else -1
        return i if 0 <= i < len(self.frames) else None


@dataclass
class ShotAnalysis:
    """Faces, tracks and cuts of the frames ``[start, stop)`` of a source."""

    source: Path  # The analysed file.
    start: int  # First frame (absolute, in the source).
    stop: int  # One past the last frame (absolute).
    fps: Fraction  # Exact frame rate.
    width: int
    height: int
    cuts: list[int] = field(default_factory=list)  # Absolute first frames of new shots inside.
    tracks: list[FaceTrack] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # Problems found; never fatal.
    faces_per_frame: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))
    source_hash: str = ""  # Content hash of the source (blake2b), for the cache.
    settings_key: str = ""  # AnalysisSettings.key() used.
    stages: dict[str, str] = field(default_factory=dict)  # Stage names used, e.g. faces=dlib-hog.
    seconds: float = 0.0  # Wall time of the analysis (0 when loaded from the cache).

    @property
    def frame_count(self) -> int:
        """Number of frames analysed."""
        return self.stop - self.start

    @property
    def coverage(self) -> float:
        """Fraction of frames with at least one tracked face."""
        n = len(self.faces_per_frame)
        return float(np.count_nonzero(self.faces_per_frame) / n) if n else 0.0

    def actors(self) -> list[str]:
        """Names of the actors seen in the shot, in track order, without repeats."""
        return list(dict.fromkeys(t.actor for t in self.tracks))

    def save(self, directory: Path) -> None:
        """Write ``analysis.json`` and ``tracks.npz`` into ``directory`` (created if needed)."""
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {"faces_per_frame": self.faces_per_frame}
        meta_tracks = []
        for t in self.tracks:
            p = f"t{t.track_id}_"
            arrays[p + "frames"] = np.asarray(t.frames, np.int32)
            arrays[p + "landmarks"] = np.asarray(t.landmarks, np.float32)
            arrays[p + "boxes"] = np.asarray(t.boxes, np.float32)
            arrays[p + "descriptors"] = np.asarray(t.descriptors, np.float32).reshape(-1, 128)
            if t.raw_landmarks is not None:
                arrays[p + "raw_landmarks"] = np.asarray(t.raw_landmarks, np.float32)
            if t.detected is not None:
                arrays[p + "detected"] = np.asarray(t.detected, bool)
            dist = t.actor_distance if np.isfinite(t.actor_distance) else None
            meta_tracks.append({"track_id": t.track_id, "actor": t.actor, "actor_distance": dist})
        meta = {
            "format": FORMAT_VERSION,
            "source": str(self.source),
            "start": self.start,
            "stop": self.stop,
            "fps": [self.fps.numerator, self.fps.denominator],
            "width": self.width,
            "height": self.height,
            "cuts": list(self.cuts),
            "tracks": meta_tracks,
            "warnings": list(self.warnings),
            "coverage": self.coverage,
            "source_hash": self.source_hash,
            "settings_key": self.settings_key,
            "stages": dict(self.stages),
            "seconds": self.seconds,
        }
        # Arrays first, JSON last: a directory with analysis.json is complete.
        # The keys are track fields ("t0_frames"), never numpy's own keyword "allow_pickle".
        np.savez_compressed(directory / "tracks.npz", **arrays)  # type: ignore[arg-type]
        tmp = directory / "analysis.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        tmp.replace(directory / "analysis.json")

    @classmethod
    def load(cls, directory: Path) -> ShotAnalysis:
        """Read what :meth:`save` wrote.

        Raises:
            FileNotFoundError: ``directory`` holds no complete analysis.
            ValueError: it was written in another format version.
        """
        meta = json.loads((directory / "analysis.json").read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{directory}: analysis format {meta.get('format')} is not supported")
        tracks = []
        with np.load(directory / "tracks.npz", allow_pickle=False) as z:
            faces = z["faces_per_frame"]
            for m in meta["tracks"]:
                p = f"t{m['track_id']}_"
                dist = m["actor_distance"]
                tracks.append(
                    FaceTrack(
                        track_id=m["track_id"],
                        frames=z[p + "frames"].astype(np.int64),
                        landmarks=z[p + "landmarks"],
                        boxes=z[p + "boxes"],
                        raw_landmarks=z.get(p + "raw_landmarks"),
                        detected=z.get(p + "detected"),
                        descriptors=z[p + "descriptors"],
                        actor=m["actor"],
                        actor_distance=float("inf") if dist is None else float(dist),
                    )
                )
        return cls(
            source=Path(meta["source"]),
            start=meta["start"],
            stop=meta["stop"],
            fps=Fraction(*meta["fps"]),
            width=meta["width"],
            height=meta["height"],
            cuts=list(meta["cuts"]),
            tracks=tracks,
            warnings=list(meta["warnings"]),
            faces_per_frame=faces,
            source_hash=meta["source_hash"],
            settings_key=meta["settings_key"],
            stages=dict(meta.get("stages", {})),
            seconds=float(meta.get("seconds", 0.0)),
        )
