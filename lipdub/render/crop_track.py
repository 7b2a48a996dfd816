"""One face track served by a crop-space generator (StyleSync), driven by the renderer through the
same steps as a native generator's track (:class:`~lipdub.render.protocols.NativeTrack`).

First pass: each frame's eye-aligned crop and mouth mask are cut into memory-mapped scratch files.
Per dub: the generator makes a new crop per frame (streamed into another scratch file) and, where
the dub is silent, the resting plan mixes in the track's most closed crop. Encode pass: the new
crop is warped back into the frame under the feathered mask.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

from lipdub.analysis.align import (
    paste_region,
    scale_of,
    similarity_to_template,
    transform_points,
    warp_to_crop,
    warp_to_frame,
)
from lipdub.analysis.protocols import MaskPlanner
from lipdub.analysis.records import FaceTrack
from lipdub.analysis.rest import RestPlan
from lipdub.model.track_clip import TrackClip
from lipdub.phonetics.track import VisemeTrack
from lipdub.render.protocols import Generator

#: ``report(done, total)``: progress of one generation.
Progress = Callable[[int, int], None]


class CropTrack:
    """A track of a crop generator (see the module doc)."""

    def __init__(
        self,
        track: FaceTrack,
        generator: Generator,
        planner: MaskPlanner,
        feather: float,
        scratch: Path,
        personal: Path | None = None,
    ) -> None:
        """Arguments:
        track: the face track.
        generator: the crop generator.
        planner: the mask stage (crop-space masks and their feathered frame-space form).
        feather: blend feather as a fraction of the crop's side.
        scratch: folder of the memory-mapped crops, masks and generated crops.
        personal: the actor's personalization file, when one is used.
        """
        self.track, self.generator, self.planner = track, generator, planner
        self.feather, self.personal = feather, personal
        size, n = generator.resolution, len(track.frames)
        self._stem = scratch / f"track{track.track_id}"
        self.crops = np.lib.format.open_memmap(
            f"{self._stem}_crops.npy", "w+", np.uint8, (n, size, size, 3)
        )
        self.masks = np.lib.format.open_memmap(
            f"{self._stem}_masks.npy", "w+", np.float32, (n, size, size)
        )
        self.matrices = np.stack([similarity_to_template(lm, size) for lm in track.landmarks])
        self.generated: np.ndarray | None = None
        self.label = ""  # Names the dub in the generated crops' file and the progress events.
        self.progress: Progress | None = None

    def add_frame(self, j: int, frame: np.ndarray) -> None:
        """Cut track frame ``j``'s aligned crop and mouth mask from the full source frame."""
        size = self.crops.shape[1]
        self.crops[j] = warp_to_crop(frame, self.matrices[j], size)
        lm_crop = transform_points(self.matrices[j], self.track.landmarks[j])
        self.masks[j] = self.planner.plan(lm_crop, size)

    def finish(self) -> None:
        """Nothing to build after the first pass."""

    def plan(
        self,
        audio_16k: np.ndarray,
        fps: Fraction,
        rest: RestPlan | None,
        visemes: VisemeTrack | None = None,
    ) -> None:
        """Generate the track's crops for one dub; where ``rest`` says so, mix in the rest crop.
        (A crop generator is driven by the audio alone: ``visemes`` is not used.)

        Raises:
            RuntimeError: the generator gave another number of crops than the track has frames.
        """
        n, size = len(self.track), self.generator.resolution
        clip = TrackClip(
            crops=self.crops,
            masks=self.masks,
            frame_indices=self.track.frames.astype(np.int64),
            audio_16k=audio_16k,
            fps=fps,
            actor=self.track.actor,
            personal=self.personal,
        )
        gen = np.lib.format.open_memmap(
            f"{self._stem}_{self.label}_gen.npy", "w+", np.uint8, (n, size, size, 3)
        )
        done = 0
        for j, crop in enumerate(self.generator.generate(clip)):
            gen[j] = crop
            done = j + 1
            if done % 25 == 0 and self.progress is not None:
                self.progress(done, n)
        if done != n:
            raise RuntimeError(f"generator returned {done} crops for {n} frames")
        if rest is not None and rest.rest_frame is not None:
            rest_crop = np.asarray(self.crops[rest.rest_frame], np.float32)
            for j in np.flatnonzero(rest.rest > 0).tolist():
                g, r = float(rest.generated[j]), float(rest.rest[j])
                mixed = (g * gen[j].astype(np.float32) + r * rest_crop) / (g + r)
                gen[j] = np.clip(mixed.round(), 0, 255).astype(np.uint8)
        self.generated = gen

    def region(
        self, j: int, shape: tuple[int, ...]
    ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """Frame box and soft blend mask of track frame ``j`` (None: too small to paste)."""
        size = self.masks.shape[1]
        matrix = self.matrices[j]
        box = paste_region(matrix, size, shape)
        x0, y0, x1, y1 = box
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        feather_px = self.feather * size / scale_of(matrix)
        return box, self.planner.blend_mask(self.masks[j], matrix, box, feather_px)

    def face(
        self, j: int, frame: np.ndarray
    ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray] | None:
        """Box, the generated crop warped into the frame, and the soft mask of frame ``j``."""
        found = self.region(j, frame.shape)
        if found is None or self.generated is None:
            return None
        box, mask = found
        return box, warp_to_frame(self.generated[j], self.matrices[j], box), mask
