"""Shot events: what a render reports while it runs (to the terminal, to JSON lines, to plugins)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

#: Event kinds, in the order a job produces them.
KINDS = ("started", "progress", "warning", "finished", "skipped", "failed")


@dataclass(frozen=True)
class ShotEvent:
    """One thing that happened to one shot job; serialises to one JSON line."""

    kind: str  # One of KINDS.
    job: str  # Job id: the shot id.
    stage: str = ""  # What the progress counts: "analysis", "render", ...
    done: int = 0  # Units finished (frames, usually).
    total: int = 0  # Units in all.
    message: str = ""  # Human-readable detail (the error for "failed").
    outputs: tuple[str, ...] = ()  # Files written (for "finished"/"skipped").
    data: dict[str, Any] = field(default_factory=dict)  # Extra numbers (QC metrics...).
    time: float = field(default_factory=time.time)  # Unix time of the event.

    def to_json(self) -> str:
        """One line of JSON, keys sorted, for farm wrappers to parse."""
        record = {"event": self.kind, **asdict(self)}
        record.pop("kind")
        record["outputs"] = list(self.outputs)
        return json.dumps(record, sort_keys=True, default=str)
