"""Write outputs under a temporary name and move them into place only when complete.

A killed render therefore never leaves a half-written file under the name an editor (or a farm's
"is it done?" check) looks at; the next run finds no output and renders the shot again.

While a file is being written its writer holds an advisory lock on it (``flock``; released by
the kernel when the process dies, however it dies), so a later run can tell a killed run's
leftovers, which it may delete, from a live writer's files, which it must not touch
(:func:`is_held`, :func:`remove_stale_partials`). Where the platform has no ``flock`` nothing is
ever judged dead.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from lipdub.errors import ConfigError

try:
    import fcntl
except ImportError:  # Not POSIX: no advisory locks, so nothing is ever reclaimed.
    fcntl = None  # type: ignore[assignment]  # The module or None; users check for None.

PARTIAL_TAG = ".lipdub-partial"


def process_tag() -> str:
    """``.HOST-PID``: what makes a temporary name private to this process, so that two
    processes writing one output (two farm nodes on one network folder) never share a file."""
    return f".{socket.gethostname()}-{os.getpid()}"


def partial_path(final: Path, tag: str | None = None) -> Path:
    """The temporary name used while ``final`` is being written (same folder, same suffix,
    private to this process unless ``tag`` says otherwise)."""
    tag = process_tag() if tag is None else tag
    return final.with_name(f".{final.stem}{PARTIAL_TAG}{tag}{final.suffix}")


def hold(path: Path, note: bool = False) -> int | None:
    """Create ``path`` if needed and take an exclusive lock on it for this process's lifetime
    (or until :func:`release`); ``note`` writes "PID HOST" into it for people.

    Returns the descriptor that holds the lock (None where locks are not available).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    if note:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    return fd


def release(fd: int | None) -> None:
    """Drop a lock taken by :func:`hold`."""
    if fd is not None:
        os.close(fd)


def is_held(path: Path) -> bool:
    """True when a live process holds ``path``'s lock (or when that cannot be known)."""
    if fcntl is None:
        return True
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # Also drops the lock if we just took it.
    return False


@contextlib.contextmanager
def atomic_output(final: Path, tag: str | None = None) -> Iterator[Path]:
    """Yield a temporary path; on success move it onto ``final``, on failure delete it.

    The temporary file's name is private to this process (:func:`partial_path`) and locked
    while it is written (see :func:`remove_stale_partials`); ``os.replace`` makes the move
    atomic, so ``final`` is always a complete file, the old one or the new one.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(final, tag)
    tmp.unlink(missing_ok=True)  # A leftover from a killed run.
    fd = hold(tmp)
    try:
        try:
            yield tmp
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, final)
    finally:
        release(fd)


def remove_stale_partials(final: Path, before: float) -> list[Path]:
    """Delete hidden partial files of ``final`` left by killed runs: not locked by a live
    writer and last written before ``before`` (a Unix time, e.g. when this run started).

    Returns the files removed.
    """
    removed = []
    pattern = f".{final.stem}{PARTIAL_TAG}*{final.suffix}"
    for path in final.parent.glob(pattern) if final.parent.is_dir() else ():
        try:
            old = path.stat().st_mtime < before
        except FileNotFoundError:
            continue
        if old and not is_held(path):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def refuse_overwriting_source(output: Path, *sources: Path) -> None:
    """Raise :class:`ConfigError` when ``output`` is one of ``sources``: never overwrite footage."""
    out = output.resolve()
    for src in sources:
        same = out == src.resolve() or (out.exists() and src.exists() and out.samefile(src))
        if same:
            raise ConfigError(
                f"{output}: output would overwrite the source {src}; pick another output path"
            )
