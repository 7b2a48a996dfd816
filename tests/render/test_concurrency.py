"""Two renders of one project at once: each job is rendered exactly once, the other renderer
skips it saying who holds it, and claims of dead renderers are taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest

from lipdub.media.atomic import partial_path
from lipdub.media.audio import save_wav
from lipdub.media.read import probe
from lipdub.render import claim
from lipdub.render.claim import Claims, Holder, claim_path
from lipdub.render.scratch import LOCK_NAME, reclaim_scratch, scratch_root
from tests.conftest import REPO, make_video, tone

#: A project-local plugin: a passthrough generator that, once this process holds a job, waits
#: until another render process has said something (any event) or has reached a generator too.
#: Without claims both processes reach the generator of the first job together; with them, the
#: second one skips it. The wait is bounded, so the test cannot hang.
GATE = """
import os, time
from pathlib import Path
from lipdub.hookspecs import hookimpl
from lipdub.stages import StageChoice

HERE = Path(__file__).parent
WAIT_S = 60.0

class Gate:
    leaves_picture_unchanged = True
    resolution = 128

def make(options):
    me = str(os.getpid())
    (HERE / f"gen-{me}").touch()
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        others = [p for p in HERE.glob("*-*") if p.name.split("-")[0] in ("ev", "gen")
                  and p.name.split("-")[1] != me]
        if others:
            break
        time.sleep(0.05)
    return Gate()

@hookimpl
def lipdub_generators():
    return [StageChoice("gate", make, "passthrough that waits for a second renderer")]

@hookimpl
def lipdub_shot_event(event):
    (HERE / f"ev-{os.getpid()}").touch()
"""

SHOT_IDS = ("a", "b", "c")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Three 1 s shots of one synthetic source, one dub each, rendered by the gate."""
    make_video(tmp_path / "in.mov", 75, Fraction(25))
    save_wav(tone(1.0), tmp_path / "dub.wav")
    (tmp_path / "lipdub_plugins.py").write_text(GATE)
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\n[stages]\ngenerator = "gate"\n[settings]\nqc = false\n'
    )
    shots = "".join(
        f"  - id: {sid}\n    source: in.mov\n    in: {25 * i}\n    out: {25 * (i + 1)}\n"
        f"    dubs: [{{name: de, audio: dub.wav}}]\n"
        for i, sid in enumerate(SHOT_IDS)
    )
    (tmp_path / "shots.yaml").write_text("shots:\n" + shots)
    return tmp_path


def _start(root: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "LIPDUB_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "lipdub", "render", "shots.yaml", "--json"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_renders_started_together_render_each_job_once(project: Path):
    procs = [_start(project), _start(project)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    evs = [json.loads(line) for out, _err in outs for line in out.splitlines() if line]
    finished = sorted(e["job"] for e in evs if e["event"] == "finished")
    assert finished == sorted(SHOT_IDS)  # Each job rendered exactly once, by one of the two.
    skipped = [e for e in evs if e["event"] == "skipped"]
    assert sorted(e["job"] for e in skipped) == sorted(SHOT_IDS)  # And skipped by the other.
    assert any(e["message"].startswith("claimed by ") for e in skipped)
    assert not [e for e in evs if e["event"] == "failed"]
    for sid in SHOT_IDS:
        out = project / "renders" / f"{sid}_de.mov"
        assert probe(out).frame_count == 25
        sidecar = project / "renders" / ".lipdub-job" / f"{sid}_de.mov.json"
        assert json.loads(sidecar.read_text())["output"] == str(out)
    leftovers = [p.name for p in (project / "renders").rglob("*") if p.is_file()]
    assert not [n for n in leftovers if "partial" in n or n.endswith(".claim")]


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_live_claim_blocks_and_a_dead_processs_claim_is_taken_over(tmp_path: Path):
    out = tmp_path / "renders" / "a_de.mov"
    with Claims([out]).acquire() as first:
        assert first.blocked is None and claim_path(out).is_file()
        second = Claims([out]).acquire()  # Same process or not: the file is what counts.
        assert second.blocked is not None and second.blocked.pid == os.getpid()
        assert second.held == ()
    assert not claim_path(out).exists()  # Released.
    dead = Holder(socket.gethostname(), _dead_pid(), time.time() - 5)
    claim_path(out).write_text(dead.to_json())
    with Claims([out]).acquire() as taken:
        assert taken.blocked is None
        (warning,) = taken.warnings
        assert f"{dead.host}:{dead.pid}" in warning and "no longer exists" in warning
        assert json.loads(claim_path(out).read_text())["pid"] == os.getpid()
    assert not claim_path(out).exists()


def test_another_hosts_claim_is_kept_while_fresh_and_taken_over_when_not(tmp_path: Path):
    out = tmp_path / "a_de.mov"
    path = claim_path(out)
    path.parent.mkdir(parents=True)
    path.write_text(Holder("other-node", 4242, time.time()).to_json())
    blocked = Claims([out]).acquire().blocked
    assert blocked is not None and blocked.describe().startswith("other-node:4242 since ")
    old = time.time() - claim.STALE_AFTER_S - 60  # No heartbeat for longer than allowed.
    os.utime(path, (old, old))
    with Claims([out]).acquire() as taken:
        assert taken.blocked is None and "not refreshed" in taken.warnings[0]


def test_claims_of_all_outputs_or_none(tmp_path: Path):
    a, b = tmp_path / "a.mov", tmp_path / "b.mov"
    with Claims([b]).acquire():
        both = Claims([a, b]).acquire()
        assert both.blocked is not None
        assert not claim_path(a).exists()  # What it had taken is given back.


def test_claims_are_released_when_interrupted(tmp_path: Path):
    out = tmp_path / "a.mov"
    with pytest.raises(KeyboardInterrupt), Claims([out]).acquire():
        raise KeyboardInterrupt
    assert not claim_path(out).exists()


def test_partial_files_are_private_to_their_process(tmp_path: Path):
    out = tmp_path / "a.mov"
    mine = partial_path(out)
    assert str(os.getpid()) in mine.name and socket.gethostname() in mine.name
    assert mine != partial_path(out, ".other") and mine.suffix == ".mov"


def test_another_hosts_scratch_is_left_alone_until_it_is_a_day_old(tmp_path: Path):
    cache = tmp_path / ".lipdub" / "cache"
    folder = scratch_root(cache) / "a-xyz"
    folder.mkdir(parents=True)
    (folder / LOCK_NAME).write_text("4242 other-node\n")  # Its flock may not reach us (NFS).
    hours_ago = time.time() - 2 * 3600
    os.utime(folder, (hours_ago, hours_ago))
    assert reclaim_scratch(cache, time.time()) == [] and folder.is_dir()
    days_ago = time.time() - 2 * 24 * 3600
    os.utime(folder, (days_ago, days_ago))
    assert reclaim_scratch(cache, time.time()) == [folder]


def test_a_listing_says_who_holds_a_job(project: Path):
    out = project / "renders" / "a_de.mov"
    with Claims([out]).acquire():
        res = subprocess.run(
            [sys.executable, "-m", "lipdub", "render", "shots.yaml", "--list", "--json"],
            cwd=project,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            check=True,
        )
    jobs = {j["id"]: j for j in map(json.loads, res.stdout.splitlines())}
    (held,) = jobs["a"]["claimed_by"]
    assert held.startswith(f"{socket.gethostname()}:{os.getpid()} since ")
    assert jobs["b"]["claimed_by"] == []
