"""Built-in tracker "iou-appearance": box overlap + colour histogram, gaps bridged, One Euro."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lipdub.analysis.settings import STAGE_FIELDS, AnalysisSettings
from lipdub.hookspecs import hookimpl
from lipdub.stages import StageChoice

_DEFAULTS = AnalysisSettings()


def build(options: Mapping[str, Any]) -> Any:
    """Build the tracker from the analysis settings (tracking and ``smooth_*`` fields)."""
    from lipdub.analysis.tracking import IouAppearanceTracker

    return IouAppearanceTracker(AnalysisSettings.from_options(options))


@hookimpl
def lipdub_trackers() -> list[StageChoice]:
    """Offer "iou-appearance"."""
    return [
        StageChoice(
            name="iou-appearance",
            factory=build,
            summary="links faces by box overlap and colour; bridges gaps; One Euro smoothing",
            options=_DEFAULTS.options(*STAGE_FIELDS["tracker"]),
        )
    ]
