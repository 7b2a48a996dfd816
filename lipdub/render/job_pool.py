"""Several shot jobs at once on this machine, one process each (``--jobs N``, local executor).

A render is mostly one core's Python around C kernels (decode, paste, encode), so two shots in
two processes use two cores where one shot leaves the second mostly waiting. Each job runs in its
own spawned process (nothing inherited but the job, which is plain data), so one job's crash or
memory is its own. How many run at once is the smaller of what was asked and what the memory
budget holds (:data:`JOB_MEMORY_GB` a job: the peak RSS of a 1080p exemplar or stylesync render,
about 1 GB in ``bench/results.md``, and some headroom). The CPUs are shared out too: each job's
frame pipeline gets its share of paste threads (:data:`~lipdub.render.frame_pass.WORKERS_ENV`),
which does not change a byte of its output.

Events come back over one queue and are emitted here, in this process, one whole event at a time,
so the terminal, ``--json`` and plugins see each job's events in that job's order. Claims
(:mod:`lipdub.render.claim`) work across processes as they do across farm tasks. Ctrl-C or
SIGTERM here stops every job: each child gets SIGTERM, cleans up as an interrupted render does
(claims, partial files, scratch) and says so with a ``failed`` event; then the interrupt goes on.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import signal
import time
from collections.abc import Callable, Sequence
from typing import Any

from lipdub.events import ShotEvent
from lipdub.render.frame_pass import WORKERS_ENV
from lipdub.render.protocols import JobResult

log = logging.getLogger(__name__)

#: Memory one job may take at its peak, in GB (1080p renders peak at about 1 GB RSS).
JOB_MEMORY_GB = 1.5
#: Seconds the children get to clean up after an interrupt before they are killed.
CLEANUP_S = 60.0
#: How often the parent looks for a child that died without a word, in seconds.
POLL_S = 0.2

Work = Callable[[Any, Callable[[ShotEvent], None]], JobResult]


def available_memory_gb() -> float | None:
    """``MemAvailable`` of /proc/meminfo in GB (None where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024**2
    except (OSError, ValueError, IndexError):
        pass
    return None


def parallel_jobs(asked: int, jobs: int, memory_gb: float | None) -> int:
    """How many jobs to run at once: ``asked``, at most ``jobs``, and at most what ``memory_gb``
    (default: the memory available now) holds at :data:`JOB_MEMORY_GB` a job; at least 1."""
    budget = available_memory_gb() if memory_gb is None else memory_gb
    fit = asked if budget is None else int(budget // JOB_MEMORY_GB)
    n = max(1, min(asked, jobs, fit))
    if n < min(asked, jobs):
        log.warning(
            "--jobs %d: the memory budget (%.1f GB, %.1f GB a job) holds %d at once",
            asked,
            budget or 0.0,
            JOB_MEMORY_GB,
            n,
        )
    return n


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # Not on Linux.
        return os.cpu_count() or 1


def _child(work: Work, job: Any, index: int, events: Any, workers: int) -> None:
    """One job in a spawned process: its events and then its result go back over ``events``."""
    from lipdub.errors import Terminated

    def terminate(_signum: int, _frame: object) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, terminate)  # The parent stops its jobs with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches them through the parent.
    os.environ[WORKERS_ENV] = str(workers)
    try:
        result = work(job, lambda event: events.put(("event", index, event)))
    except KeyboardInterrupt:  # Reported by the job as `failed`; the parent ends the run.
        result = JobResult(_job_id(job), ok=False, error="interrupted")
    events.put(("result", index, result))


def _job_id(job: Any) -> str:
    return getattr(job, "job_id", None) or str(getattr(job, "id", job))


def run_parallel(
    jobs: Sequence[Any], work: Work, emit: Callable[[ShotEvent], None], n: int
) -> list[JobResult]:
    """Run ``work(job, emit)`` for every job, ``n`` processes at once; results in job order.

    A child that dies without a result (killed, out of memory) fails its job, with its exit
    code, and the others go on.
    """
    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    workers = max(1, _cpus() // n)
    results: list[JobResult | None] = [None] * len(jobs)
    running: dict[int, Any] = {}
    started = 0
    try:
        while started < len(jobs) or running:
            while started < len(jobs) and len(running) < n:
                proc = ctx.Process(
                    target=_child,
                    args=(work, jobs[started], started, events, workers),
                    name=f"lipdub-job-{_job_id(jobs[started])}",
                )
                proc.start()
                running[started] = proc
                started += 1
            _take(events, emit, results, running, POLL_S)
            _bury(jobs, emit, results, running)
    except BaseException as exc:  # Ctrl-C / SIGTERM (or a bug here): stop every job, cleanly.
        stopped = dict(running)
        _stop(events, emit, results, running)
        why = str(exc) or type(exc).__name__
        for index in stopped:
            if results[index] is None:  # Stopped before it could say a word (still starting).
                message = f"interrupted ({why}) before it began; no output of it was written"
                emit(ShotEvent("failed", _job_id(jobs[index]), message=message))
        raise
    finally:
        events.close()
    return [r for r in results if r is not None]


def _take(
    events: Any,
    emit: Callable[[ShotEvent], None],
    results: list[JobResult | None],
    running: dict[int, Any],
    timeout: float,
) -> None:
    """Emit what the children sent (waiting up to ``timeout`` for the first message)."""
    wait = timeout
    while True:
        try:
            kind, index, payload = events.get(timeout=wait)
        except queue.Empty:
            return
        wait = 0.0
        if kind == "event":
            emit(payload)
        else:
            results[index] = payload
            proc = running.pop(index, None)
            if proc is not None:
                proc.join()


def _bury(
    jobs: Sequence[Any],
    emit: Callable[[ShotEvent], None],
    results: list[JobResult | None],
    running: dict[int, Any],
) -> None:
    """Fail the jobs whose process ended with an error code and sent no result."""
    for index, proc in list(running.items()):
        if proc.is_alive() or proc.exitcode == 0:
            continue  # Alive, or exited cleanly: its result is still in the pipe.
        running.pop(index)
        message = f"the job's process died (exit code {proc.exitcode}); no output of it is left"
        emit(ShotEvent("failed", _job_id(jobs[index]), message=message))
        results[index] = JobResult(_job_id(jobs[index]), ok=False, error=message)


def _stop(
    events: Any,
    emit: Callable[[ShotEvent], None],
    results: list[JobResult | None],
    running: dict[int, Any],
) -> None:
    """SIGTERM every running child, pass on their last events while they clean up, and kill
    those still running after :data:`CLEANUP_S`."""
    for proc in running.values():
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + CLEANUP_S
    while running and time.monotonic() < deadline:
        try:
            _take(events, emit, results, running, POLL_S)
        except KeyboardInterrupt:  # A second Ctrl-C: stop passing events on, keep waiting.
            continue
        for index, proc in list(running.items()):
            if not proc.is_alive():
                running.pop(index)
    for proc in running.values():
        proc.kill()
        proc.join()
