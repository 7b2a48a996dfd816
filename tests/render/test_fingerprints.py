"""Job fingerprints: a re-run skips only outputs whose inputs are unchanged, renders stale ones
again (saying why), lists done / stale / todo, and reclaims what killed runs left behind."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.config.plan import load_plan
from lipdub.config.project import PERSONAL_FILE, load_project
from lipdub.media.atomic import hold, partial_path, release
from lipdub.media.audio import save_wav
from lipdub.render import fingerprint
from lipdub.render.scratch import reclaim_scratch, scratch_root
from tests.conftest import make_video, tone

SHOTS = """\
shots:
  - id: a
    source: in.mov
    actors: [anna]
    dubs: [{name: de, audio: dub_de.wav, gain_db: 0}]
"""


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def events(res) -> list[dict]:
    return [json.loads(x) for x in res.output.splitlines() if x.startswith("{")]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A passthrough project: one 2 s shot of anna, one German dub."""
    make_video(tmp_path / "in.mov", 50, Fraction(25))
    save_wav(tone(2.0), tmp_path / "dub_de.wav")
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\n[stages]\ngenerator = "passthrough"\n'
        '[settings]\nqc = false\n[actors.anna]\nfootage = ["in.mov"]\n'
    )
    (tmp_path / "shots.yaml").write_text(SHOTS)
    return tmp_path


def render(root: Path, *args: str) -> list[dict]:
    res = run("render", str(root / "shots.yaml"), "--json", *args)
    assert res.exit_code == 0, res.output
    return events(res)


def listing(root: Path, *args: str) -> dict:
    res = run("render", str(root / "shots.yaml"), "--list", "--json", *args)
    assert res.exit_code == 0, res.output
    (job,) = events(res)
    return job


def kinds(evs: list[dict]) -> list[str]:
    return [e["event"] for e in evs if e["event"] != "progress"]


def test_a_finished_output_is_done_with_its_fingerprint_beside_it(project: Path):
    assert listing(project)["status"] == "todo"
    render(project)
    out = project / "renders" / "a_de.mov"
    sidecar = project / "renders" / ".lipdub-job" / "a_de.mov.json"
    assert sidecar.is_file() and sidecar == fingerprint.sidecar_path(out)
    record = json.loads(sidecar.read_text())
    assert record["parts"]["gain_db"] == 0.0 and record["shot"]["range"] == [0, 50]
    job = listing(project)
    assert (job["status"], job["changed"], job["done"]) == ("done", [], True)
    assert kinds(render(project)) == ["skipped"]


def test_changing_gain_db_renders_again_and_says_why(project: Path):
    render(project)
    out = project / "renders" / "a_de.mov"
    before = out.stat().st_ino, out.stat().st_mtime_ns
    shots = project / "shots.yaml"
    shots.write_text(shots.read_text().replace("gain_db: 0", "gain_db: -6"))
    job = listing(project)
    assert (job["status"], job["changed"], job["done"]) == ("stale", ["gain_db:de"], False)
    evs = render(project)
    assert kinds(evs)[0] == "started" and "finished" in kinds(evs)
    started = next(e for e in evs if e["event"] == "started")
    assert started["message"] == "stale (de: gain_db changed); rendering again"
    assert (out.stat().st_ino, out.stat().st_mtime_ns) != before
    assert listing(project)["status"] == "done"
    assert kinds(render(project)) == ["skipped"]


def test_a_replaced_dub_wav_is_stale_a_touched_one_is_not(project: Path):
    render(project)
    wav = project / "dub_de.wav"
    os.utime(wav, ns=(time.time_ns(), time.time_ns() + 10**9))  # Same bytes, new mtime.
    assert listing(project)["status"] == "done"
    save_wav(tone(2.0, freq=300.0), wav)  # Another language, same length and name.
    job = listing(project)
    assert (job["status"], job["changed"]) == ("stale", ["audio:de"])
    assert "finished" in kinds(render(project))
    assert listing(project)["status"] == "done"


def test_settings_weights_and_actor_files_are_in_the_fingerprint(project: Path):
    render(project)
    shots = project / "shots.yaml"
    shots.write_text(shots.read_text() + "    settings: {blender: poisson}\n")
    assert listing(project)["changed"] == ["settings.blender"]
    shots.write_text(SHOTS)
    changed = listing(project, "--weights", "lite-v3")["changed"]
    assert changed == ["settings.weights", "weights.generator"]
    personal = project / PERSONAL_FILE.format(name="anna")
    personal.parent.mkdir(parents=True)
    personal.write_bytes(b"delta-w v1")  # `lipdub personalize` wrote a file for anna.
    assert listing(project)["changed"] == ["actor:anna.personal"]
    render(project)
    personal.write_bytes(b"delta-w v2")  # ... and personalized her again.
    assert listing(project)["changed"] == ["actor:anna.personal"]
    assert listing(project, "--no-personal")["changed"] == [
        "actor:anna.personal",
        "settings.personal",
    ]
    bank = personal.parent / "bank" / "shot-b"
    bank.mkdir(parents=True)
    (bank / "part.json").write_text("{}")
    (bank / "patches.npy").write_bytes(b"\0" * 64)
    assert listing(project)["changed"] == ["actor:anna.bank", "actor:anna.personal"]


def test_an_output_without_a_fingerprint_is_stale(project: Path):
    render(project)
    fingerprint.sidecar_path(project / "renders" / "a_de.mov").unlink()  # An older lipdub's.
    job = listing(project)
    assert (job["status"], job["changed"]) == ("stale", ["no fingerprint"])
    evs = render(project)
    started = next(e for e in evs if e["event"] == "started")
    assert started["message"] == "stale (de: no fingerprint); rendering again"
    assert listing(project)["status"] == "done"


def test_force_renders_a_done_output_again(project: Path):
    render(project)
    assert "finished" in kinds(render(project, "--force"))
    assert listing(project)["status"] == "done"


_KILLED = """\
import os, sys
from pathlib import Path
from lipdub.render.scratch import scratch_dir
path = scratch_dir(Path(sys.argv[1]), "a")
(path / "track0_crops.npy").write_bytes(bytes(4096))
print(path, flush=True)
{end}
"""


def _scratch_process(cache: Path, end: str) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED.format(end=end), str(cache)],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def test_killed_runs_scratch_is_reclaimed_and_a_live_one_kept(project: Path):
    cache = project / ".lipdub" / "cache"
    killed, dead = _scratch_process(cache, "os.kill(os.getpid(), 9)")
    killed.wait(timeout=60)
    live, alive = _scratch_process(cache, "sys.stdin.read()")  # Holds until stdin closes.
    try:
        old = (dead, alive, scratch_root(cache) / "a-unlocked")  # + one from an older lipdub.
        old[2].mkdir()
        for folder in old:
            os.utime(folder, (time.time() - 3600, time.time() - 3600))
        assert all(f.is_dir() for f in old)
        render(project)  # Reclaims before it renders.
        assert not dead.exists() and not old[2].exists()
        assert alive.is_dir() and (alive / "track0_crops.npy").is_file()
    finally:
        live.communicate("", timeout=60)
    assert reclaim_scratch(cache, time.time() + 1) == [alive]  # Its owner is gone now.


def test_a_stale_partial_beside_a_skipped_output_is_removed_a_live_one_kept(project: Path):
    render(project)
    out = project / "renders" / "a_de.mov"
    stale = partial_path(out)
    stale.write_bytes(b"half a movie")  # A killed `--force` re-render left it.
    os.utime(stale, (time.time() - 600, time.time() - 600))
    live = partial_path(out, ".other")
    live.write_bytes(b"being written")
    os.utime(live, (time.time() - 600, time.time() - 600))
    fd = hold(live)  # A writer still at work on it.
    try:
        assert kinds(render(project)) == ["skipped"]
        assert not stale.exists() and live.exists()
    finally:
        release(fd)


def test_a_change_to_one_actors_bank_leaves_shots_without_that_actor_done(project: Path):
    (project / "lipdub.toml").write_text(
        (project / "lipdub.toml").read_text() + '[actors.bob]\nfootage = ["in.mov"]\n'
    )
    # Shot a names anna; shot b names nobody (whoever the analysis finds): here no face at all.
    (project / "shots.yaml").write_text(
        SHOTS + "  - id: b\n    source: in.mov\n    dubs: [{name: de, audio: dub_de.wav}]\n"
    )
    render(project)
    res = run("render", str(project / "shots.yaml"), "--list", "--json")
    assert [j["status"] for j in events(res)] == ["done", "done"]
    bank = project / PERSONAL_FILE.format(name="bob").rsplit("/", 1)[0] / "bank" / "shot-x"
    bank.mkdir(parents=True)
    (bank / "part.json").write_text("{}")  # `lipdub personalize --actor bob` built his bank.
    res = run("render", str(project / "shots.yaml"), "--list", "--json")
    assert [(j["id"], j["status"]) for j in events(res)] == [("a", "done"), ("b", "done")]
    anna = project / PERSONAL_FILE.format(name="anna").rsplit("/", 1)[0] / "bank" / "shot-y"
    anna.mkdir(parents=True)
    (anna / "part.json").write_text("{}")
    res = run("render", str(project / "shots.yaml"), "--list", "--json")
    jobs = {j["id"]: j for j in events(res)}
    assert jobs["a"]["changed"] == ["actor:anna.bank"] and jobs["b"]["status"] == "done"


def test_the_rule_driver_is_in_an_exemplar_fingerprint_and_its_constants_count(
    project: Path, monkeypatch: pytest.MonkeyPatch
):
    """The default driver (viseme-table) has no file: its name and the digest of its constants
    stand in the fingerprint, so a changed rule makes the exemplar's outputs stale."""
    plan = load_plan(project / "shots.yaml", load_project(project), {})
    shot = plan.shots[0]
    exemplar = dataclasses.replace(
        shot, settings=dataclasses.replace(shot.settings, generator="exemplar")
    )

    def driver_part(s) -> object:
        parts, _ = fingerprint.shot_fingerprint_parts(s, project, project / ".cache", [])
        return parts.get("weights.driver")

    assert driver_part(shot) is None  # Passthrough uses no driver.
    part = driver_part(exemplar)
    assert part["name"] == "viseme-table" and len(part["config_sha256"]) == 64
    monkeypatch.setattr(fingerprint, "rule_digest", lambda name: "0" * 64)
    assert driver_part(exemplar) != part
