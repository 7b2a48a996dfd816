"""Built-in face detectors "dlib-hog" (frontal faces) and "dlib-cnn" (mmod, more poses).

The default detector is "blazeface" (:mod:`lipdub.plugins.faces_blazeface`): HOG costs ~70 ms a
1080p frame on CPU, BlazeFace a few.

Both compute dlib's 128-d face descriptors; model files come from the face-recognition-models
package (released into the public domain by dlib's author). Landmarks are the ``landmarker``
stage's (:mod:`lipdub.plugins.landmarkers`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lipdub.analysis.settings import STAGE_FIELDS, AnalysisSettings
from lipdub.hookspecs import hookimpl
from lipdub.stages import StageChoice

_DEFAULTS = AnalysisSettings()
#: dlib's code is Boost-licensed; its author released the model files into the public domain.
_LICENCE = "Boost-1.0 (dlib; HOG filters in its code) + public domain (mmod, ResNet descriptor)"


def _factory(method: str) -> Any:
    def build(options: Mapping[str, Any]) -> Any:
        from lipdub.analysis.faces import DlibFaceDetector

        return DlibFaceDetector(method, int(options.get("detect_upsample", 0)))

    build.__doc__ = f"Build the dlib {method} face detector."
    return build


@hookimpl
def lipdub_face_detectors() -> list[StageChoice]:
    """Offer "dlib-hog" and "dlib-cnn"."""
    return [
        StageChoice(
            name="dlib-hog",
            factory=_factory("hog"),
            summary="dlib HOG + SVM frontal faces, 128-d descriptors",
            options=_DEFAULTS.options(*STAGE_FIELDS["faces"]),
            licence=_LICENCE,
        ),
        StageChoice(
            name="dlib-cnn",
            factory=_factory("cnn"),
            summary="dlib mmod CNN faces (more poses; ~60x slower than HOG on CPU)",
            options=_DEFAULTS.options(*STAGE_FIELDS["faces"]),
            licence=_LICENCE,
        ),
    ]
