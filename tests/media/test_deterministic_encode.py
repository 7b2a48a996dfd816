"""The same frames give the same bytes on any machine: the encoders' thread count is fixed, not
taken from the CPUs a process may use (a farm node's cgroup, a Ray worker, a laptop)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

#: Encodes 40 frames of moving texture with one codec into argv[2]; run in a child process so
#: that its CPU affinity can differ from the test's.
ENCODE = """
import sys
from fractions import Fraction
from pathlib import Path
import numpy as np
from lipdub.media.write import VideoWriter, codec_for
out = Path(sys.argv[2])
rng = np.random.default_rng(7)
texture = rng.integers(0, 256, (256, 512, 3), dtype=np.uint8)
with VideoWriter(out, 256, 192, Fraction(25), codec_for(sys.argv[1], out)) as w:
    for i in range(40):
        w.write(np.ascontiguousarray(texture[32 + i % 7 : 224 + i % 7, 3 * i : 3 * i + 256]))
"""


def _encode(codec: str, out: Path, cpus: set[int] | None) -> str:
    def pin() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [sys.executable, "-c", ENCODE, codec, str(out)], check=True, env=env, preexec_fn=pin
    )
    return hashlib.sha256(out.read_bytes()).hexdigest()


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs a machine with two CPUs or more to run one encode on fewer",
)
@pytest.mark.parametrize(
    ("codec", "suffix"), [("h264", ".mp4"), ("prores_hq", ".mov"), ("ffv1", ".mkv")]
)
def test_one_cpu_or_all_give_the_same_bytes(tmp_path: Path, codec: str, suffix: str):
    one = {min(os.sched_getaffinity(0))}
    few = _encode(codec, tmp_path / f"one{suffix}", one)
    many = _encode(codec, tmp_path / f"all{suffix}", None)
    assert few == many
