"""Built-in personalizer ``stylesync-delta``: StyleSync's ΔW / ΔP fitted on an actor's footage.

The work is in :mod:`lipdub.plugins.stylesync_personalizer`; this module only offers the choice, and
imports nothing heavy, so registering it (every command does) does not load torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lipdub.hookspecs import hookimpl
from lipdub.stages import StageChoice
from lipdub.train.personal_defaults import LAMBDA_P, LEARNING_RATE

DEFAULTS: dict[str, Any] = {
    "weights": None,
    "model": "full",
    "device": "auto",
    "tune": "high-res",
    "rank": 0,
    "lambda_p": LAMBDA_P,
    "lr": LEARNING_RATE,
    "syncnet": None,
    "discriminator": None,
    "general_data": None,
}


def create(options: Mapping[str, Any]) -> Any:
    """Factory of the ``stylesync-delta`` choice (a
    :class:`lipdub.plugins.stylesync_personalizer.StyleSyncPersonalizer`)."""
    from lipdub.plugins.stylesync_personalizer import StyleSyncPersonalizer

    return StyleSyncPersonalizer(options)


@hookimpl
def lipdub_personalizers() -> list[StageChoice]:
    """Offer the StyleSync ΔW / ΔP personalizer."""
    return [
        StageChoice(
            "stylesync-delta",
            create,
            "StyleSync §3.3 ΔW MLP + ΔP on the actor's footage (E_a, E_face frozen)",
            dict(DEFAULTS),
            "research-only: fine-tunes lite-v4 (trained on research-only clips)",
        )
    ]
