"""Built-in mask planner "u-shape": pose- and mouth-aware U over mouth, cheeks and jaw."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lipdub.analysis.settings import STAGE_FIELDS, AnalysisSettings
from lipdub.hookspecs import hookimpl
from lipdub.stages import StageChoice

_DEFAULTS = AnalysisSettings()


def build(options: Mapping[str, Any]) -> Any:
    """Build the planner from the analysis settings (``mask_*`` fields)."""
    from lipdub.analysis.masks import UShapePlanner

    return UShapePlanner(AnalysisSettings.from_options(options))


@hookimpl
def lipdub_mask_planners() -> list[StageChoice]:
    """Offer "u-shape"."""
    return [
        StageChoice(
            name="u-shape",
            factory=build,
            summary="U-shaped lower-face mask grown with mouth opening and head yaw",
            options=_DEFAULTS.options(*STAGE_FIELDS["masks"]),
        )
    ]
