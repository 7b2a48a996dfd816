"""How a Ray task's GPUs are chosen (the ray executor and personalize share it)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from lipdub.cluster import task_gpus
from lipdub.errors import ConfigError


def cluster(gpus: float) -> SimpleNamespace:
    return SimpleNamespace(
        cluster_resources=lambda: {"CPU": 8.0, **({"GPU": gpus} if gpus else {})}
    )


def test_by_default_one_gpu_where_there_is_one() -> None:
    assert task_gpus(cluster(0), None, "--num-gpus") == 0
    assert task_gpus(cluster(4), None, "--num-gpus") == 1


def test_asked_gpus_must_exist() -> None:
    assert task_gpus(cluster(4), 0.5, "--num-gpus") == 0.5
    with pytest.raises(ConfigError, match="--num-gpus 2 but the Ray cluster has 1 GPU"):
        task_gpus(cluster(1), 2, "--num-gpus")
