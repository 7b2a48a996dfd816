"""Built-in face detector "blazeface" (the default): MediaPipe's BlazeFace, full-range model.

Apache-2.0 (the model, bundled in weights/ and checked against the manifest); identity
descriptors from dlib's ResNet, whose model file dlib's author released into the public domain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lipdub.hookspecs import hookimpl
from lipdub.stages import StageChoice

LICENCE = "Apache-2.0 (MediaPipe BlazeFace model) + public domain (dlib ResNet descriptor)"


def build(options: Mapping[str, Any]) -> Any:
    """Build the BlazeFace detector (its model verified against weights/manifest.toml)."""
    from lipdub.analysis.blazeface import load_blazeface

    return load_blazeface()


@hookimpl
def lipdub_face_detectors() -> list[StageChoice]:
    """Offer "blazeface"."""
    return [
        StageChoice(
            name="blazeface",
            factory=build,
            summary="MediaPipe BlazeFace full-range faces (any pose, a few ms a frame on CPU), "
            "dlib 128-d descriptors",
            options={},
            licence=LICENCE,
        )
    ]
