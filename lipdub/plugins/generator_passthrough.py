"""The ``passthrough`` generator: gives back the input crops unchanged.

It exists to test everything around the model (decode, analysis, warps, blending, encode, mux)
and is labelled as such wherever it is used; it does not change a single lip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import numpy as np

from lipdub.hookspecs import hookimpl
from lipdub.model.track_clip import TrackClip
from lipdub.stages import StageChoice


class PassthroughGenerator:
    """Returns each crop as it came in (no lip-sync: for pipeline tests and dry runs)."""

    #: :class:`lipdub.render.protocols.UnchangedPicture`: the pipeline copies the source.
    leaves_picture_unchanged: Literal[True] = True

    def __init__(self, resolution: int = 256) -> None:
        self.resolution = resolution

    def generate(
        self, clip: TrackClip, progress: Callable[[int], None] | None = None
    ) -> Iterator[np.ndarray]:
        """Yield the input crops unchanged."""
        for crop in clip.crops:
            yield np.asarray(crop)
            if progress:
                progress(1)


@hookimpl
def lipdub_generators() -> list[StageChoice]:
    """Offer ``passthrough``."""

    def factory(options: Mapping[str, Any]) -> PassthroughGenerator:
        return PassthroughGenerator(int(options.get("resolution", 256)))

    return [
        StageChoice(
            "passthrough",
            factory,
            "TEST ONLY: returns the source face unchanged",
            {"resolution": 256},
        )
    ]
