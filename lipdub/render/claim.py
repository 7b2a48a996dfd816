"""Claims on outputs: one renderer per output at a time, on one machine or many.

Two renders of one project may run at once (a farm that dispatches a task twice, an artist beside
the farm, two nodes on one network folder). Before a job looks at its outputs it claims each of
them with a small file, ``<output folder>/.lipdub-job/<output name>.claim``, created with
``O_CREAT | O_EXCL``: the one create that succeeds owns the output, on a local disk and on NFS
alike (no ``flock``, which NFS does not honour everywhere). The file says who holds it (host,
process id, the process's start time where the system tells it) and since when.

A renderer that finds an output claimed skips the job (``claimed by HOST:PID since ...``). A
claim whose holder is known to be gone is taken over, with a warning:

- on the same host, its process no longer exists (or the process id now belongs to a process
  that started later than the claim's);
- on another host (whose processes cannot be seen), the holder has not refreshed the claim's
  modification time for :data:`STALE_AFTER_S`: a live holder touches its claims every
  :data:`HEARTBEAT_S` from a background thread.

Taking over is itself race-free: the stale file is first renamed to a name private to this
process; only the renamer goes on, and if the renamed file turns out to be a fresh claim (its
holder replaced the stale one in between) it is put back with a create-exclusive ``link``.

Claims are released on every exit path (``with`` block, :class:`KeyboardInterrupt` and
``SystemExit`` included); a process killed outright leaves its claim behind, which the next
renderer takes over as above.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: Where claims live: the fingerprints' folder beside the outputs.
CLAIM_DIR = ".lipdub-job"
#: Suffix of a claim file.
CLAIM_SUFFIX = ".claim"
#: A live holder refreshes the modification time of its claims this often, in seconds.
HEARTBEAT_S = 30.0
#: A claim from another host not refreshed for this long (ten missed heartbeats) is stale.
STALE_AFTER_S = 10 * HEARTBEAT_S
#: How many times a claim is tried when a stale one is taken over under our feet.
ATTEMPTS = 3


@dataclass(frozen=True)
class Holder:
    """Who holds a claim."""

    host: str  # socket.gethostname() of the holder.
    pid: int  # Its process id.
    since: float  # Unix time the claim was made.
    started: int | None = None  # The process's start time in clock ticks since boot (Linux).

    def describe(self) -> str:
        """``host:pid since 2026-12-07 16:54:50 UTC``, for messages."""
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        return f"{self.host}:{self.pid} since {when}"

    def to_json(self) -> str:
        """The claim file's text."""
        return json.dumps(asdict(self), sort_keys=True) + "\n"


def claim_path(output: Path) -> Path:
    """The claim file of ``output``."""
    return output.parent / CLAIM_DIR / f"{output.name}{CLAIM_SUFFIX}"


def _process_start(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (field 22 of /proc/PID/stat);
    None where /proc does not say (not Linux, or no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def me() -> Holder:
    """This process as a claim holder, now."""
    pid = os.getpid()
    return Holder(socket.gethostname(), pid, time.time(), _process_start(pid))


def _read(path: Path) -> tuple[Holder | None, float | None]:
    """The holder a claim file names and its modification time; (None, None) when it is gone,
    (None, mtime) when it cannot be read as a claim (a holder still writing it, or damage)."""
    try:
        mtime = path.stat().st_mtime
        record: dict[str, Any] = json.loads(path.read_text())
        return Holder(**record), mtime
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError, TypeError):
        try:
            return None, path.stat().st_mtime
        except OSError:
            return None, None


def gone(holder: Holder, mtime: float, now: float | None = None) -> str | None:
    """Why ``holder``'s claim (last refreshed at ``mtime``) is stale, or None while it may be
    alive."""
    now = time.time() if now is None else now
    if holder.host == socket.gethostname():
        try:
            os.kill(holder.pid, 0)
        except ProcessLookupError:
            return f"process {holder.pid} no longer exists"
        except PermissionError:  # Another user's live process.
            pass
        started = _process_start(holder.pid)
        if holder.started is not None and started is not None and started != holder.started:
            return f"process id {holder.pid} now belongs to another process"
        return None
    if now - mtime > STALE_AFTER_S:
        every = f"a live holder refreshes it every {HEARTBEAT_S:.0f} s"
        return f"not refreshed for {now - mtime:.0f} s ({every})"
    return None


class _Heartbeat:
    """Refreshes the modification time of this process's claims while any is held, so that
    renderers on other hosts can tell a live claim from a dead host's."""

    def __init__(self) -> None:
        self.paths: set[Path] = set()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def add(self, path: Path) -> None:
        with self.lock:
            self.paths.add(path)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="lipdub-claims", daemon=True)
                self.thread.start()

    def remove(self, path: Path) -> None:
        with self.lock:
            self.paths.discard(path)

    def _run(self) -> None:
        while not self.wake.wait(HEARTBEAT_S):
            with self.lock:
                paths = sorted(self.paths)
            for path in paths:
                with contextlib.suppress(OSError):  # Released meanwhile, or a flaky mount.
                    os.utime(path)


_heartbeat = _Heartbeat()


def _create(path: Path, holder: Holder) -> bool:
    """Create ``path`` exclusively with ``holder``'s record; False when it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    try:
        os.write(fd, holder.to_json().encode())
    finally:
        os.close(fd)
    return True


def _take_over(path: Path, stale: Holder | None, mtime: float) -> bool:
    """Remove the stale claim at ``path`` (as read: ``stale``, ``mtime``) unless another process
    replaced or removed it first. True when the way is clear to claim again."""
    private = path.with_name(f"{path.name}.{socket.gethostname()}-{os.getpid()}.stale")
    try:
        os.rename(path, private)
    except FileNotFoundError:
        return True  # Someone removed it already: try to claim.
    moved, moved_mtime = _read(private)
    if moved == stale and moved_mtime == mtime:
        private.unlink(missing_ok=True)
        return True
    # A fresh claim went up between reading and renaming: put it back (create-exclusive).
    with contextlib.suppress(FileExistsError):
        os.link(private, path)
    private.unlink(missing_ok=True)
    return False


@dataclass
class Claims:
    """The claims of one job's outputs: :meth:`acquire`, then use as a context manager (its end
    releases them).

    After :meth:`acquire`, :attr:`blocked` is the holder of the first output another live
    renderer has claimed (then this job holds nothing and should skip), else None and every
    output is held;
    :attr:`warnings` says which stale claims were taken over.
    """

    outputs: Sequence[Path]
    blocked: Holder | None = None
    warnings: tuple[str, ...] = ()
    held: tuple[Path, ...] = ()

    def acquire(self) -> Claims:
        """Claim every output, or none (see the class).

        Raises:
            OSError: the claim folder cannot be made or written (a read-only output folder).
        """
        holder = me()
        held: list[Path] = []
        warnings: list[str] = []
        try:
            for output in sorted({Path(o) for o in self.outputs}):
                path = claim_path(output)
                path.parent.mkdir(parents=True, exist_ok=True)
                blocked = self._claim_one(path, output, holder, warnings)
                if blocked is not None:
                    self.blocked = blocked
                    break
                held.append(path)
                _heartbeat.add(path)
        except BaseException:
            self._release(held)
            raise
        if self.blocked is not None:
            self._release(held)
            held = []
        self.held, self.warnings = tuple(held), tuple(warnings)
        return self

    @staticmethod
    def _claim_one(path: Path, output: Path, holder: Holder, warnings: list[str]) -> Holder | None:
        """Claim one output; the live holder that prevents it, or None once it is ours."""
        for _ in range(ATTEMPTS):
            if _create(path, holder):
                return None
            other, mtime = _read(path)
            if mtime is None:
                continue  # Released meanwhile: try again.
            if other is None:  # Unreadable: a claim being written, or damaged.
                other = Holder("?", 0, mtime)
                why = (
                    f"unreadable for {time.time() - mtime:.0f} s"
                    if time.time() - mtime > STALE_AFTER_S
                    else None
                )
            else:
                why = gone(other, mtime)
            if why is None:
                return other
            if _take_over(path, None if other.host == "?" else other, mtime):
                warnings.append(
                    f"{output.name}: took over the claim of {other.describe()} ({why}); "
                    "rendering it here"
                )
        other, _mtime = _read(path)
        return other or Holder("?", 0, time.time())

    def __enter__(self) -> Claims:
        return self

    def __exit__(self, *exc: object) -> None:
        self._release(self.held)
        self.held = ()

    @staticmethod
    def _release(paths: Sequence[Path]) -> None:
        """Remove our claim files (only those that still name this process)."""
        pid, host = os.getpid(), socket.gethostname()
        for path in paths:
            _heartbeat.remove(path)
            holder, _mtime = _read(path)
            if holder is not None and (holder.host, holder.pid) != (host, pid):
                log.warning("%s: claim was taken over by %s", path, holder.describe())
                continue
            path.unlink(missing_ok=True)


def holder_of(output: Path) -> Holder | None:
    """Who holds ``output``'s claim now, if anyone (for listings)."""
    return _read(claim_path(output))[0]
