"""Up-front checks of sources and output folders: what would otherwise fail after analysis.

Run with the other checks of :func:`lipdub.render.jobs.check_jobs`, before any frame is read
for analysis, so that a problem ends the run with exit 2 and one line naming the file:

- a still image given as a video (one frame: a "render" of it is a one-frame clip, which is
  never what was meant), unless asked for;
- a source whose frame size the codec cannot encode (an odd size in 4:2:0 H.264 or in ProRes
  4:2:2), with the codecs that can;
- an output folder that cannot be written (read-only, no permission), found by creating a file
  in it, which is what the render will do at its end.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable

from lipdub.config.plan import Plan, probe_source
from lipdub.config.shots import Shot
from lipdub.errors import ConfigError
from lipdub.media.atomic import process_tag
from lipdub.media.write import CODECS, codec_for, size_problem


def check_sources(plan: Plan, shots: Iterable[Shot], allow_still: bool = False) -> None:
    """Refuse a still image as a source (unless ``allow_still``) and a frame size the shot's
    codec cannot encode.

    Raises:
        ConfigError: naming the shots file and line (or --video), the file and the fix.
    """
    for shot in shots:
        where = plan.shot_where(shot)
        info = probe_source(shot.source, where, shot.settings.conform_vfr)
        if info.frame_count <= 1 and not allow_still:
            raise ConfigError(
                f"{where}: {shot.source.name} is a still image ({info.codec}, one frame), not "
                "footage; make a clip of it first, or give --allow-still to render it as a "
                "one-frame clip"
            )
        for dub in shot.dubs:
            codec = codec_for(shot.settings.codec, dub.output)
            problem = size_problem(codec, info.width, info.height)
            if problem is None:
                continue
            fits = [
                c.name
                for c in CODECS.values()
                if size_problem(c, info.width, info.height) is None
                and dub.output.suffix.lower() in c.containers
            ]
            fix = f"set `codec: {fits[0]}`" if fits else "render into a .mkv with `codec: ffv1`"
            raise ConfigError(
                f"{where}: shot {shot.id!r}: {problem}; crop or pad the source by one row or "
                f"column to an even size, or {fix} (lossless, any size)"
            )


def check_output_folders(plan: Plan, shots: Iterable[Shot]) -> None:
    """Every output folder takes a new file: a file is created and removed in it or, where it
    does not exist yet, in the nearest folder above it that does (the render makes the rest;
    nothing is left behind by the check).

    Raises:
        ConfigError: naming the folder, the reason and the fix.
    """
    folders = sorted({dub.output.parent for shot in shots for dub in shot.dubs})
    for folder in folders:
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        probe = existing / f".lipdub-write-check{process_tag()}"
        try:
            if not existing.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"{existing} is a file")
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.close(fd)
            probe.unlink()
        except OSError as exc:
            raise ConfigError(
                f"{folder}: the output folder cannot be written ({exc.strerror or exc}); fix its "
                "permissions or mount, or name outputs elsewhere (`output:` per dub, or -o)"
            ) from None
