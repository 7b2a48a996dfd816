"""Write outputs under a temporary name and move them into place only when complete.

A killed render therefore never leaves a half-written file under the name an editor (or a farm's
"is it done?" check) looks at; the next run finds no output and renders the shot again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from lipdub.errors import ConfigError

PARTIAL_TAG = ".lipdub-partial"


def partial_path(final: Path, tag: str = "") -> Path:
    """The temporary name used while ``final`` is being written (same folder, same suffix)."""
    return final.with_name(f".{final.stem}{PARTIAL_TAG}{tag}{final.suffix}")


@contextlib.contextmanager
def atomic_output(final: Path, tag: str = "") -> Iterator[Path]:
    """Yield a temporary path; on success move it onto ``final``, on failure delete it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(final, tag)
    tmp.unlink(missing_ok=True)  # A leftover from a killed run.
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)


def refuse_overwriting_source(output: Path, *sources: Path) -> None:
    """Raise :class:`ConfigError` when ``output`` is one of ``sources``: never overwrite footage."""
    out = output.resolve()
    for src in sources:
        same = out == src.resolve() or (out.exists() and src.exists() and out.samefile(src))
        if same:
            raise ConfigError(
                f"{output}: output would overwrite the source {src}; pick another output path"
            )
