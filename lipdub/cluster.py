"""Ray, for the commands that send work to a cluster (the ``ray`` executor, ``personalize``).

One place decides how lipdub joins a cluster: ``RAY_ADDRESS`` (or an explicit address) when set,
a local Ray otherwise; Ray is shut down afterwards only when it was started here; and a task asks
for GPUs the cluster actually has.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from lipdub.errors import ConfigError


@contextmanager
def ray_session(address: str | None, what: str) -> Iterator[ModuleType]:
    """The ``ray`` module, initialised for the block.

    Arguments:
        address: a cluster to join (None: ``RAY_ADDRESS``, else a local Ray).
        what: the option that asked for Ray, for the error when Ray is not installed.

    Raises:
        ConfigError: Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError(f"{what} needs Ray: pip install 'lipdub[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=address or os.environ.get("RAY_ADDRESS") or None,
            include_dashboard=False,
            log_to_driver=False,
            ignore_reinit_error=True,
        )
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def task_gpus(ray: ModuleType, wanted: float | None, option: str) -> float:
    """GPUs for one task: ``wanted``, or (None) one when the cluster has a GPU, else none.

    Raises:
        ConfigError: more GPUs wanted than the cluster has (the task would wait forever).
    """
    there = float(ray.cluster_resources().get("GPU", 0))
    gpus = (1.0 if there >= 1 else 0.0) if wanted is None else float(wanted)
    if gpus > there:
        raise ConfigError(f"{option} {gpus:g} but the Ray cluster has {there:g} GPU(s)")
    return gpus
