"""Built-in executors: ``local`` (one job after another in this process, or ``jobs`` at once in
processes of their own: :mod:`lipdub.render.job_pool`) and ``ray``.

``ray`` sends each shot to a Ray cluster as a task (``RAY_ADDRESS`` is respected; a local Ray is
started when none is set) with ``num_gpus`` per task (by default one where the cluster has GPUs);
outputs are the same files the local executor writes, because the task runs the very same job
function. Joining the cluster is :mod:`lipdub.cluster`'s, shared with ``personalize``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lipdub.cluster import ray_session, task_gpus
from lipdub.events import ShotEvent
from lipdub.hookspecs import hookimpl
from lipdub.render.job_pool import parallel_jobs, run_parallel
from lipdub.render.protocols import JobResult
from lipdub.stages import StageChoice

log = logging.getLogger(__name__)

Work = Callable[[Any, Callable[[ShotEvent], None]], JobResult]


class LocalExecutor:
    """Runs jobs on this machine: in order in this process (progress events flow straight to
    the terminal), or ``jobs`` at once, each in a process of its own, within ``memory_gb``."""

    def __init__(self, jobs: int = 1, memory_gb: float | None = None) -> None:
        if jobs < 1:
            raise ValueError(f"executor 'local': jobs must be 1 or more, got {jobs}")
        self.jobs = jobs
        self.memory_gb = memory_gb

    def run(
        self, jobs: Sequence[Any], work: Work, emit: Callable[[ShotEvent], None]
    ) -> list[JobResult]:
        """See :class:`lipdub.render.protocols.Executor`."""
        n = parallel_jobs(self.jobs, len(jobs), self.memory_gb) if self.jobs > 1 else 1
        if n == 1:
            return [work(job, emit) for job in jobs]
        return run_parallel(jobs, work, emit, n)


class RayExecutor:
    """Runs each job as a Ray task; results come back as they finish."""

    def __init__(self, address: str | None, num_gpus: float | None, num_cpus: float) -> None:
        self.address = address
        self.num_gpus = num_gpus
        self.num_cpus = num_cpus

    def run(
        self, jobs: Sequence[Any], work: Work, emit: Callable[[ShotEvent], None]
    ) -> list[JobResult]:
        """See :class:`lipdub.render.protocols.Executor`."""
        with ray_session(self.address, "executor 'ray' (or pick --executor local)") as ray:
            gpus = task_gpus(ray, self.num_gpus, "executor 'ray' num_gpus")
            task = ray.remote(num_gpus=gpus, num_cpus=self.num_cpus)(_remote_job)
            pending = {}
            for index, job in enumerate(jobs):
                emit(ShotEvent("started", job_id(job), stage="queued on ray"))
                pending[task.remote(work, job)] = index
            results: list[JobResult | None] = [None] * len(jobs)
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                index = pending.pop(done[0])
                result, events = ray.get(done[0])
                for event in events:
                    emit(event)
                results[index] = result
            return [r for r in results if r is not None]


def _remote_job(work: Work, job: Any) -> tuple[JobResult, list[ShotEvent]]:
    """Run one job on a Ray worker, collecting its events to replay on the driver."""
    events: list[ShotEvent] = []
    result = work(job, events.append)
    return result, [e for e in events if e.kind != "progress"]


def job_id(job: Any) -> str:
    """The id a job reports under."""
    return getattr(job, "job_id", None) or str(getattr(job, "id", job))


#: The local executor's options: shots rendered at once (each in its own process), and the
#: memory they may use together in GB (None: what the machine has available when the run starts).
LOCAL_OPTIONS: dict[str, Any] = {"jobs": 1, "memory_gb": None}


def _local(options: Mapping[str, Any]) -> LocalExecutor:
    memory = options.get("memory_gb")
    return LocalExecutor(int(options.get("jobs", 1)), None if memory is None else float(memory))


#: The ray executor's options and their defaults (num_gpus None: one GPU per task where the
#: cluster has GPUs, none where it has not). The plugin manager refuses any other option.
RAY_OPTIONS: dict[str, Any] = {"address": None, "num_gpus": None, "num_cpus": 1.0}


def _ray(options: Mapping[str, Any]) -> RayExecutor:
    return RayExecutor(
        address=options.get("address"),
        num_gpus=None if options.get("num_gpus") is None else float(options["num_gpus"]),
        num_cpus=float(options.get("num_cpus", 1)),
    )


@hookimpl
def lipdub_executors() -> list[StageChoice]:
    """Offer ``local`` and ``ray``."""
    return [
        StageChoice(
            "local",
            _local,
            "one shot after another in process, or `jobs` at once in processes",
            LOCAL_OPTIONS,
        ),
        StageChoice(
            "ray",
            _ray,
            "one Ray task per shot (RAY_ADDRESS, or a local Ray)",
            RAY_OPTIONS,
        ),
    ]
