"""Built-in shot detector "scenedetect": PySceneDetect's AdaptiveDetector (or ContentDetector)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lipdub.analysis.settings import STAGE_FIELDS, AnalysisSettings
from lipdub.hookspecs import hookimpl
from lipdub.stages import StageChoice

_DEFAULTS = AnalysisSettings()


def build(options: Mapping[str, Any]) -> Any:
    """Build the detector from the analysis settings (``shot_*`` fields) and ``shot_method``."""
    from lipdub.analysis.cuts import SceneDetectShots

    settings = AnalysisSettings.from_options(options)
    return SceneDetectShots(settings, method=str(options.get("shot_method", "adaptive")))


@hookimpl
def lipdub_shot_detectors() -> list[StageChoice]:
    """Offer "scenedetect"."""
    return [
        StageChoice(
            name="scenedetect",
            factory=build,
            summary="PySceneDetect adaptive content detector (hard cuts, robust to camera moves)",
            options={
                "shot_method": "adaptive",
                **_DEFAULTS.options(*STAGE_FIELDS["shots"]),
            },
        )
    ]
