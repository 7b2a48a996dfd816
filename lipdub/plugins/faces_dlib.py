"""Built-in face detectors "dlib-hog" (default, fast on CPU) and "dlib-cnn" (mmod, more poses).

Both fit dlib's 68-point landmarks (iBUG 300-W: non-commercial terms) and compute dlib's 128-d
face descriptors; model files come from the face-recognition-models package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lipdub.analysis.settings import STAGE_FIELDS, AnalysisSettings
from lipdub.hookspecs import hookimpl
from lipdub.stages import StageChoice

_DEFAULTS = AnalysisSettings()


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
            summary="dlib HOG + SVM frontal faces, 68 landmarks, 128-d descriptors (fast on CPU)",
            options=_DEFAULTS.options(*STAGE_FIELDS["faces"]),
        ),
        StageChoice(
            name="dlib-cnn",
            factory=_factory("cnn"),
            summary="dlib mmod CNN faces (more poses; ~60x slower than HOG on CPU), 68 landmarks",
            options=_DEFAULTS.options(*STAGE_FIELDS["faces"]),
        ),
    ]
