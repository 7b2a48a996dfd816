"""Built-in landmarkers: "mediapipe" (the default, Apache-2.0) and "dlib68" (research-only).

``mediapipe`` runs MediaPipe's Face Mesh with attention (468 points, lips refined; bundled in
weights/ and checked against the manifest) through LiteRT and reads dlib's 68 points off it
(:mod:`lipdub.analysis.mesh68`). ``dlib68`` is dlib's 68-point shape predictor, trained on iBUG
300-W, whose terms exclude commercial use: it warns when it loads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lipdub.analysis.faces import DLIB68_TERMS, Dlib68Landmarker
from lipdub.analysis.mesh import MODEL_NAME, MeshLandmarker, load_mesh_landmarker
from lipdub.hookspecs import hookimpl
from lipdub.stages import StageChoice


def _mesh(options: Mapping[str, Any]) -> MeshLandmarker:
    """Build the MediaPipe landmarker (its model verified against weights/manifest.toml)."""
    return load_mesh_landmarker(
        int(options["threads"]), model=str(options["mesh_model"]), follow=bool(options["follow"])
    )


def _dlib68(options: Mapping[str, Any]) -> Dlib68Landmarker:
    """Build the dlib 68-point landmarker (its model loads, with a warning, at first use)."""
    return Dlib68Landmarker()


@hookimpl
def lipdub_landmarkers() -> list[StageChoice]:
    """Offer "mediapipe" and "dlib68"."""
    return [
        StageChoice(
            name="mediapipe",
            factory=_mesh,
            summary="MediaPipe Face Mesh with attention (468 points, lips refined; LiteRT) read "
            "as dlib's 68; inner lips from the mesh's inner-lip contour; its presence score "
            "drives re-detection",
            # CPU threads of the runtime (the points do not depend on it); the face-landmarker
            # model of weights/manifest.toml ("mediapipe-face-mesh-v1": no lip refinement).
            # follow: a face followed from the previous frame is fitted in one pass on the crop
            # its previous points framed (MediaPipe's tracking): ~7% less analysis time, but
            # lip detail 0.02-0.08 lower on 3 of 4 test renders (bench/results.md), so off.
            options={"threads": 1, "mesh_model": MODEL_NAME, "follow": False},
            licence=MeshLandmarker.licence,
        ),
        StageChoice(
            name="dlib68",
            factory=_dlib68,
            summary="dlib's 68-point shape predictor (warns at first use)",
            licence=DLIB68_TERMS,
        ),
    ]
