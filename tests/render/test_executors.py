"""Built-in executors (hook ``lipdub_executors``) and the shot-event hook."""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner

from lipdub.cli import main
from lipdub.events import ShotEvent
from lipdub.plugin_manager import PluginManager
from lipdub.render.protocols import JobResult
from tests.conftest import make_video


def square(job: int, emit) -> JobResult:
    emit(ShotEvent("progress", str(job), done=1, total=1))
    if job == 3:
        return JobResult(str(job), ok=False, error="three is broken")
    return JobResult(str(job), ok=True, report={"value": job * job})


def test_local_executor_runs_every_job_in_order_despite_a_failure():
    events: list[ShotEvent] = []
    results = (
        PluginManager(autoload=False)
        .create("executor", "local")
        .run([1, 2, 3, 4], square, events.append)
    )
    assert [r.job_id for r in results] == ["1", "2", "3", "4"]
    assert [r.ok for r in results] == [True, True, False, True]
    assert results[3].report == {"value": 16}
    assert len(events) == 4


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_executor_writes_byte_identical_outputs(tmp_path: Path, dub_wav: Path):
    """The same reel rendered by a local Ray (CPU) and by the local executor."""
    make_video(tmp_path / "in.mov", 30, Fraction(25))
    (tmp_path / "dub.wav").write_bytes(dub_wav.read_bytes())
    (tmp_path / "lipdub.toml").write_text(
        '[project]\nname = "t"\n[stages]\ngenerator = "passthrough"\n'
        '[settings]\ncodec = "ffv1"\ncontainer = ".mkv"\n'
    )
    shots = "shots:\n" + "".join(
        f"  - {{id: s{i}, source: in.mov, in: {i * 10}, out: {i * 10 + 10}, "
        f"dubs: [{{name: de, audio: dub.wav}}]}}\n"
        for i in range(3)
    )
    (tmp_path / "shots.yaml").write_text(shots)
    runner = CliRunner()
    local = runner.invoke(main, ["render", str(tmp_path / "shots.yaml"), "--json"])
    assert local.exit_code == 0, local.output
    first = {p.name: p.read_bytes() for p in (tmp_path / "renders").glob("*.mkv")}
    remote = runner.invoke(
        main, ["render", str(tmp_path / "shots.yaml"), "--json", "--force", "--executor", "ray"]
    )
    assert remote.exit_code == 0, remote.output
    second = {p.name: p.read_bytes() for p in (tmp_path / "renders").glob("*.mkv")}
    assert sorted(first) == ["s0_de.mkv", "s1_de.mkv", "s2_de.mkv"]
    assert first == second
    assert remote.output.count('"finished"') == 3


def test_shot_events_reach_plugins_and_serialise(caplog: pytest.LogCaptureFixture):
    """The built-in events_log plugin implements lipdub_shot_event."""
    caplog.set_level("DEBUG", logger="lipdub.events")
    PluginManager(autoload=False).emit(ShotEvent("finished", "sh010", outputs=("a.mov",)))
    assert '"event": "finished"' in caplog.text and '"outputs": ["a.mov"]' in caplog.text


def test_executor_options_are_checked_against_what_the_choice_declares():
    from lipdub.errors import PluginError
    from lipdub.plugin_manager import PluginManager

    pm = PluginManager(autoload=False)
    ray = pm.create("executor", "ray", {"num_gpus": 1, "num_cpus": 2})
    assert (ray.num_gpus, ray.num_cpus, ray.address) == (1.0, 2.0, None)
    assert pm.create("executor", "ray").num_gpus is None  # One GPU a task where there are any.
    with pytest.raises(PluginError, match=r"executor 'ray' has no option 'num_gpu'; did you mean"):
        pm.create("executor", "ray", {"num_gpu": 1})
    with pytest.raises(PluginError, match=r"executor 'local' has no option 'num_gpus'.*jobs"):
        pm.create("executor", "local", {"num_gpus": 1})
