"""`--jobs N`: several shots at once, each in its own process, with the same files and a
coherent event stream as one after the other; a job whose process dies fails alone; SIGTERM
stops every job and leaves no partial file."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest

from lipdub.events import ShotEvent
from lipdub.media.audio import save_wav
from lipdub.plugin_manager import PluginManager
from lipdub.render.job_pool import JOB_MEMORY_GB, parallel_jobs, run_parallel
from lipdub.render.protocols import JobResult
from tests.conftest import REPO, make_video, tone

pytestmark = pytest.mark.slow


def cube_or_die(job: int, emit) -> JobResult:
    """Module level, so a spawned process can import it: job 2's process dies without a word."""
    emit(ShotEvent("started", str(job)))
    if job == 2:
        os._exit(3)
    for k in range(3):
        emit(ShotEvent("progress", str(job), done=k + 1, total=3))
    return JobResult(str(job), ok=True, report={"value": job**3})


def test_parallel_jobs_keep_order_and_a_dead_process_fails_only_its_job():
    events: list[ShotEvent] = []
    results = run_parallel([1, 2, 3, 4], cube_or_die, events.append, 2)
    assert [r.job_id for r in results] == ["1", "2", "3", "4"]
    assert [r.ok for r in results] == [True, False, True, True]
    assert "exit code 3" in (results[1].error or "")
    assert results[3].report == {"value": 64}
    for job in ("1", "3", "4"):  # Each job's own events arrive in its own order.
        mine = [(e.kind, e.done) for e in events if e.job == job]
        assert mine == [("started", 0), ("progress", 1), ("progress", 2), ("progress", 3)]


def test_the_memory_budget_caps_the_jobs_at_once():
    assert parallel_jobs(4, 10, memory_gb=2.5 * JOB_MEMORY_GB) == 2
    assert parallel_jobs(4, 3, memory_gb=100.0) == 3
    assert parallel_jobs(4, 10, memory_gb=0.1) == 1
    local = PluginManager(autoload=False).create("executor", "local", {"jobs": 3})
    assert local.jobs == 3


def _project(root: Path, shots: int, frames: int) -> None:
    save_wav(tone(frames / 25 + 0.5), root / "dub.wav")
    lines = ["shots:"]
    for k in range(shots):
        make_video(root / f"in{k}.mov", frames, Fraction(25))
        lines.append(f"  - {{id: s{k}, source: in{k}.mov, dubs: [{{name: de, audio: dub.wav}}]}}")
    (root / "shots.yaml").write_text("\n".join(lines) + "\n")
    (root / "lipdub.toml").write_text(
        '[project]\nname = "t"\n[stages]\ngenerator = "passthrough"\n'
        '[settings]\nqc = false\naudio_fit = "pad-trim"\n'
    )


def _lipdub(root: Path, *args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LIPDUB_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "lipdub", "render", "shots.yaml", "--json", *args],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_jobs_2_writes_the_files_of_one_after_the_other(tmp_path: Path):
    _project(tmp_path, 3, 30)
    digests = {}
    for jobs in ("1", "2"):
        proc = _lipdub(tmp_path, "--force", "--jobs", jobs)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        events = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
        for k in range(3):
            kinds = [e["event"] for e in events if e["job"] == f"s{k}"]
            assert kinds[0] == "started" and kinds[-1] == "finished", kinds
        digests[jobs] = [
            hashlib.sha256((tmp_path / "renders" / f"s{k}_de.mov").read_bytes()).hexdigest()
            for k in range(3)
        ]
    assert digests["1"] == digests["2"]


def test_jobs_is_refused_with_another_executor(tmp_path: Path):
    _project(tmp_path, 1, 5)
    proc = _lipdub(tmp_path, "--jobs", "2", "--executor", "ray")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "--jobs is for the local executor" in err


def test_sigterm_stops_every_job_and_leaves_no_partial_file(tmp_path: Path):
    _project(tmp_path, 2, 3000)  # Long enough to be mid-encode when the signal comes.
    proc = _lipdub(tmp_path, "--jobs", "2")
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # Until a job is encoding.
            seen.append(line)
            if '"stage": "encode' in line:
                break
            assert time.monotonic() < deadline
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=120)  # No hang.
        out = "".join(seen) + rest
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err[-2000:]
    events = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    failed = {e["job"] for e in events if e["event"] == "failed"}
    finished = {e["job"] for e in events if e["event"] == "finished"}
    assert failed and failed | finished == {"s0", "s1"}
    left = sorted(p.name for p in (tmp_path / "renders").iterdir())
    assert not [n for n in left if "partial" in n], left
    assert [n for n in left if n.endswith(".mov")] == sorted(f"{j}_de.mov" for j in finished)
    scratch = tmp_path / ".lipdub" / "tmp"
    assert not scratch.exists() or not [p for p in scratch.iterdir() if p.is_dir()]
