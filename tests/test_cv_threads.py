"""OpenCV's thread count is fixed by importing lipdub, so its warps give the same bytes on one CPU
as on many (README: renders are byte-exact)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

# A float crop warped back into a large frame box, as warp_to_frame does on every dubbed frame:
# OpenCV's float warpAffine rounds differently where its per-thread stripes meet.
PROBE = """
import hashlib, numpy as np
import lipdub, cv2
from lipdub.analysis.align import warp_to_frame
rng = np.random.default_rng(0)
crop = rng.random((512, 512, 3)).astype(np.float32)
m = np.array([[0.52, 0.03, -310.7], [-0.025, 0.51, -140.2]])
out = warp_to_frame(crop, m, (300, 120, 1400, 1060))
print(cv2.getNumThreads(), hashlib.sha256(out.tobytes()).hexdigest())
"""


def _probe(cpus: set[int] | None) -> str:
    def pin() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        preexec_fn=pin,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs two CPUs to compare one against many",
)
def test_a_float_warp_gives_the_same_bytes_on_one_cpu_and_on_all():
    everything = _probe(None)
    one = _probe({min(os.sched_getaffinity(0))})
    assert one == everything
    assert one.split()[0] == "1"  # lipdub.CV_THREADS, whatever the CPU count.
