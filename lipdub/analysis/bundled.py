"""The TFLite models bundled in weights/ (MediaPipe's face detector and face mesh), checked.

Each is listed in weights/manifest.toml under a ``kind`` ("face-detector", "face-landmarker");
its bytes are read only after :func:`lipdub.manifest.verified_record` has matched their SHA-256
against the manifest and the JSON record beside them, so a tampered file is refused before the
runtime parses it.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Any

from lipdub.errors import WeightsError
from lipdub.manifest import load_manifest, verified_record

log = logging.getLogger(__name__)


@cache
def bundled_model(
    name: str, kind: str, what: str, manifest: Path | None = None
) -> tuple[bytes, str, dict[str, Any]]:
    """The model ``name`` of ``kind``: its bytes, SHA-256 and its record's ``config`` (once per
    process and file). ``what`` names it in errors.

    Raises:
        WeightsError: no such entry of that kind, or the file or its record does not match.
    """
    m = load_manifest(manifest)
    entry = m.entries.get(name)
    if entry is None or entry.kind != kind:
        known = [n for n, e in m.entries.items() if e.kind == kind]
        raise WeightsError(f"{m.path}: no {kind} named {name!r} (listed: {known})")
    record = verified_record(entry.file, kind, what, entry.sha256)
    data = entry.file.read_bytes()
    log.debug("loaded %s (%d bytes)", entry.file, len(data))
    return data, entry.sha256, dict(record["config"])
