"""Built-in event listener: writes every shot event to the ``lipdub.events`` logger (DEBUG).

It shows how a farm integration hooks in: implement ``lipdub_shot_event`` and forward events.
"""

from __future__ import annotations

import logging

from lipdub.events import ShotEvent
from lipdub.hookspecs import hookimpl

log = logging.getLogger("lipdub.events")


@hookimpl
def lipdub_shot_event(event: ShotEvent) -> None:
    """Log the event as its JSON line."""
    log.debug("%s", event.to_json())
