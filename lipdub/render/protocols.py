"""What the render pipeline asks of its swappable stages: generator, blender and executor.

Plugins return objects satisfying these protocols from their stage hooks (see
:mod:`lipdub.hookspecs`). They are structural: no base class to inherit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from lipdub.render.events import ShotEvent


@dataclass
class TrackClip:
    """One face track's inputs for generation, everything in the generator's crop space.

    ``crops`` and ``masks`` may be memory-mapped arrays: a generator must read them in chunks
    rather than copy them whole, so long tracks stay within bounded memory.
    """

    crops: np.ndarray  # (T, S, S, 3) uint8 RGB, eye-aligned crops at the generator's resolution.
    masks: np.ndarray  # (T, S, S) float32 in [0, 1]; 1 = region to regenerate (U-shaped M).
    frame_indices: np.ndarray  # (T,) int, each crop's frame number counted from the shot's start.
    audio_16k: np.ndarray  # (N,) float32 mono dub at 16 kHz; sample 0 = the shot's first frame.
    fps: Fraction  # The shot's exact frame rate; maps frame numbers onto audio time.
    reference: int | None = None  # Index into crops of the reference frame; None = generator picks.
    actor: str | None = None  # Actor name of the track ("unknown" when not identified).
    personal: Path | None = None  # The actor's personalization file, when one is used.


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
