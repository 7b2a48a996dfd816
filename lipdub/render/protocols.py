"""What the render pipeline asks of its swappable stages: generator, blender and executor.

Plugins return objects satisfying these protocols from their stage hooks (see
:mod:`lipdub.hookspecs`). They are structural: no base class to inherit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from lipdub.analysis.records import FaceTrack
from lipdub.analysis.rest import RestPlan
from lipdub.model.track_clip import TrackClip
from lipdub.phonetics.track import VisemeTrack

if TYPE_CHECKING:
    from lipdub.analysis.protocols import MaskPlanner
    from lipdub.events import ShotEvent


@runtime_checkable
class Generator(Protocol):
    """Makes new lower faces for a track from the dub audio (StyleSync, or a test stand-in)."""

    resolution: int  # Crop side S the generator works at (256, or 128 for `lite`).

    def generate(
        self, clip: TrackClip, progress: Callable[[int], None] | None = None
    ) -> Iterator[np.ndarray]:
        """Yield one (S, S, 3) uint8 RGB crop per input crop, in order.

        ``progress(n)`` is called with the number of crops finished since the last call.
        """
        ...


@runtime_checkable
class UnchangedPicture(Protocol):
    """A generator that leaves every picture as it is (``passthrough``, for dry runs and tests):
    the renderer copies the source frames, with the dub muxed, and skips analysis, warping and
    blending, and says so in the warnings. A generator is one only by declaring the attribute."""

    leaves_picture_unchanged: Literal[True]


@dataclass(frozen=True)
class TrackContext:
    """What a native generator gets to know about a track's shot besides the track itself."""

    source: str  # Label of the footage ("shot:<id>" or a path): bank holdout compares on it.
    frame_shape: tuple[int, ...]  # (H, W, 3) of the shot's frames.
    scratch: Path | None  # Folder for memory-mapped scratch files (None: keep in memory).
    planner: MaskPlanner  # The mask stage.
    feather: float  # Blend feather as a fraction of the aligned crop's side.
    actor_dir: Path | None = None  # The actor's folder (actors/NAME: what personalize stored);
    # None when there is none or personal files are switched off (--no-personal).


@runtime_checkable
class NativeTrack(Protocol):
    """One track of a native generator, driven through the shot by the renderer."""

    def add_frame(self, j: int, frame: np.ndarray) -> None:
        """Track frame ``j`` (full (H, W, 3) uint8 RGB source frame) during the first pass."""
        ...

    def finish(self) -> None:
        """Called once after the first pass."""
        ...

    def plan(
        self,
        audio_16k: np.ndarray,
        fps: Fraction,
        rest: RestPlan | None,
        visemes: VisemeTrack | None = None,
    ) -> Any:
        """Prepare one dub (audio as in :class:`TrackClip`; ``rest`` = the resting mouth;
        ``visemes`` = the dub's viseme track, frames counted from the shot's first)."""
        ...

    def region(
        self, j: int, shape: tuple[int, ...]
    ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """Frame box ``(x0, y0, x1, y1)`` and (h, w) float32 soft mask of track frame ``j``."""
        ...

    def face(
        self, j: int, frame: np.ndarray
    ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray] | None:
        """Box, (h, w, 3) uint8 new face pixels and soft mask of track frame ``j`` (None: none)."""
        ...


@runtime_checkable
class NativeGenerator(Protocol):
    """Makes new lower faces in frame space, at the source's own resolution (``exemplar``).

    Unlike :class:`Generator` it never sees a small aligned crop: the renderer hands it the
    track and the full frames, and pastes what :meth:`NativeTrack.face` returns.
    """

    def thin(self, track: FaceTrack, context: TrackContext) -> str | None:
        """Why this track cannot be served (the renderer keeps its source frames, or gives it to
        the ``fallback`` crop generator, and warns), or None."""
        ...

    def open_track(self, track: FaceTrack, context: TrackContext) -> NativeTrack:
        """Start a track."""
        ...


@runtime_checkable
class Blender(Protocol):
    """Pastes a generated face (already warped back into frame space) into a frame."""

    def blend(self, frame: np.ndarray, face: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Return ``frame`` with ``face`` blended in where ``mask`` is non-zero.

        Arguments:
            frame: (H, W, 3) uint8 RGB region of the source frame (a crop around the face).
            face: (H, W, 3) uint8 RGB generated face, same region.
            mask: (H, W) float32 soft mask in [0, 1]; pixels where it is 0 must come back
                exactly equal to ``frame``.
        """
        ...


@dataclass(frozen=True)
class JobResult:
    """What one shot job produced (or why it failed); picklable so executors can ship it."""

    job_id: str  # "<shot id>" or "<shot id>/<dub name>".
    ok: bool  # True when every output of the job was written.
    outputs: tuple[str, ...] = ()  # Paths written (or already present, when skipped).
    skipped: bool = False  # True when the outputs existed and --force was not given.
    error: str | None = None  # One-line reason when ok is False.
    seconds: float = 0.0  # Wall time the job took.
    report: dict[str, Any] | None = None  # Per-shot QC numbers, when measured.


@runtime_checkable
class Executor(Protocol):
    """Runs shot jobs; one failing job must not stop the others."""

    def run(
        self,
        jobs: Sequence[Any],
        work: Callable[[Any, Callable[[ShotEvent], None]], JobResult],
        emit: Callable[[ShotEvent], None],
    ) -> list[JobResult]:
        """Run ``work(job, emit)`` for every job; return the results in the order of ``jobs``.

        ``work`` is a picklable module-level callable, so it can be shipped to other processes
        or machines; it never raises for a job's own failure (it returns a failed JobResult).
        The executor passes ``emit`` through where it can (in process) and emits ``started``
        and ``finished``/``failed`` itself otherwise.
        """
        ...
