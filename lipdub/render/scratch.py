"""Scratch folders of shot renders, and reclaiming the ones killed runs left behind.

A shot's memory-mapped crops live in ``.lipdub/tmp/<shot>-XXXXXXXX/`` (tens of MB) while it
renders and go when it is done. A killed render cannot clean up, so the next render reclaims every
scratch folder that is older than itself and not held by a live process: each folder holds a
``.lock`` file locked (``flock``) by the process that made it, so a concurrent farm task's scratch
is never touched, and the kernel drops the lock however that process ends. The lock file also
names its host: where ``flock`` does not reach across machines (some NFS mounts), another host's
folder is left alone until it is :data:`OTHER_HOST_GRACE_S` old.
"""

from __future__ import annotations

import logging
import shutil
import socket
import tempfile
from pathlib import Path

from lipdub.media.atomic import hold, is_held, release

log = logging.getLogger(__name__)

#: The lock file inside a scratch folder (it also says "PID HOST" of its owner).
LOCK_NAME = ".lock"
#: A folder without a lock file (made by a lipdub before locks) is reclaimed only when it has not
#: changed for this long, in seconds.
UNLOCKED_GRACE_S = 60.0

#: Another host's scratch folder (its live renderer cannot be seen from here) is reclaimed only
#: when it has not changed for this long, in seconds (a shot renders in minutes, not a day).
OTHER_HOST_GRACE_S = 24 * 3600.0

_held: dict[Path, int | None] = {}  # Scratch folder -> descriptor holding its lock.


def scratch_root(cache_dir: Path) -> Path:
    """Where a project's scratch folders go (``.lipdub/tmp`` beside ``.lipdub/cache``)."""
    return cache_dir.parent / "tmp"


def scratch_dir(cache_dir: Path, shot_id: str) -> Path:
    """A private scratch folder for one shot's memory-mapped crops, locked until
    :func:`remove_scratch` (or the end of this process)."""
    root = scratch_root(cache_dir)
    root.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{shot_id}-", dir=root))
    _held[path] = hold(path / LOCK_NAME, note=True)
    return path


def remove_scratch(path: Path) -> None:
    """Delete a scratch folder (and drop its lock)."""
    shutil.rmtree(path, ignore_errors=True)
    release(_held.pop(path, None))


def reclaim_scratch(cache_dir: Path, before: float) -> list[Path]:
    """Delete the scratch folders of killed runs: last changed before ``before`` (a Unix time:
    when this run started) and not locked by a live process.

    Returns the folders removed.
    """
    root = scratch_root(cache_dir)
    try:
        folders = sorted(root.iterdir()) if root.is_dir() else []
    except OSError as exc:  # Reclaiming is housekeeping: it never stops a render.
        log.warning("%s: cannot look for scratch of killed renders (%s)", root, exc)
        return []
    removed = []
    for folder in folders:
        lock = folder / LOCK_NAME
        try:
            if not folder.is_dir() or folder in _held:
                continue
            changed = folder.stat().st_mtime
            locked = lock.is_file()
        except OSError:  # Another run removed it meanwhile.
            continue
        if changed >= (before if locked else before - UNLOCKED_GRACE_S):
            continue
        if locked and _other_host(lock) and changed >= before - OTHER_HOST_GRACE_S:
            continue
        if locked and is_held(lock):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
        log.info("removed %s (scratch of a killed render)", folder)
    return removed


def _other_host(lock: Path) -> bool:
    """True when ``lock`` ("PID HOST") was written on another machine."""
    try:
        words = lock.read_text().split()
    except OSError:
        return False
    return len(words) >= 2 and words[1] != socket.gethostname()
