"""Wall time, CPU time and peak memory of the render's stages, for the job report's ``timing``.

The stages that are not part of the frame pipeline (analysis, the first pass over the source,
generation, QC) are timed as blocks; the pipeline's own stages keep their clocks in
:mod:`lipdub.media.stream`. The peak RSS at each stage's end says which stage raised it.
"""

from __future__ import annotations

import time
from typing import Any

try:
    import resource
except ImportError:  # Not POSIX: no peak RSS in the timing.
    resource = None  # type: ignore[assignment]  # The module or None; peak_rss_mb checks.


class clocked:  # Used as a ``with`` block, named as one.
    """Adds the wall and CPU seconds of its block to ``timing[dub][stage]`` (``timing[stage]``
    when ``dub`` is None), and the process's peak RSS at its end."""

    def __init__(self, timing: dict[str, Any], dub: str | None, stage: str) -> None:
        self.into = timing if dub is None else timing.setdefault(dub, {})
        self.stage = stage

    def __enter__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def __exit__(self, *exc: object) -> None:
        self.into[self.stage] = {
            "wall_s": round(time.perf_counter() - self.wall0, 3),
            "process_cpu_s": round(time.process_time() - self.cpu0, 3),
            # The process's peak RSS so far: the stage that raises it is the one to look at.
            "peak_rss_mb": peak_rss_mb(),
        }


def peak_rss_mb() -> float | None:
    """This process's peak resident memory so far, in MB (Linux counts ``ru_maxrss`` in kB);
    None where there is no ``resource`` module."""
    if resource is None:
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
