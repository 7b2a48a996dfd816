"""The plugin system: built-ins, entry-point plugins, project-local plugins, duplicates."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

from lipdub import hookspecs
from lipdub.errors import PluginError
from lipdub.events import ShotEvent
from lipdub.plugin_manager import AUTOLOAD_ENV, PluginManager
from lipdub.stages import STAGES

REPO = Path(__file__).resolve().parents[1]

PLUGIN_SOURCE = """
from lipdub.hookspecs import hookimpl
from lipdub.stages import StageChoice

EVENTS = []

class InvertBlender:
    def blend(self, frame, face, mask):
        return 255 - frame

@hookimpl
def lipdub_blenders():
    return [StageChoice("invert", lambda options: InvertBlender(), "inverts (test)")]

@hookimpl
def lipdub_shot_event(event):
    EVENTS.append(event.kind)
"""


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A tiny package on disk with an entry point in the `lipdub` group, importable."""
    site = tmp_path / "site"
    (site / "studio_plugin").mkdir(parents=True)
    (site / "studio_plugin" / "__init__.py").write_text(PLUGIN_SOURCE)
    dist = site / "studio_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: studio-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[lipdub]\nstudio = studio_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv(AUTOLOAD_ENV, raising=False)
    yield "studio_plugin"
    sys.modules.pop("studio_plugin", None)


def test_entry_point_plugin_is_loaded_and_chosen_by_name(installed_plugin: str):
    pm = PluginManager()
    reg = pm.get("blender", "invert")
    assert reg.source == "entry point: studio-plugin 0.1"
    blender = pm.create("blender", "invert")
    frame = np.zeros((4, 4, 3), np.uint8)
    assert (blender.blend(frame, frame, np.zeros((4, 4), np.float32)) == 255).all()
    pm.emit(ShotEvent("started", "sh010"))
    assert sys.modules[installed_plugin].EVENTS == ["started"]


def test_autoload_can_be_switched_off(installed_plugin: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(AUTOLOAD_ENV, "1")
    pm = PluginManager()
    assert "invert" not in pm.choices("blender")
    with pytest.raises(PluginError, match="no blender called 'invert'"):
        pm.get("blender", "invert")


def test_project_local_plugins_file(tmp_path: Path):
    (tmp_path / "lipdub_plugins.py").write_text(PLUGIN_SOURCE.replace('"invert"', '"local-inv"'))
    pm = PluginManager(tmp_path, autoload=False)
    assert pm.get("blender", "local-inv").source == str(tmp_path / "lipdub_plugins.py")


def test_duplicate_names_are_refused(tmp_path: Path):
    (tmp_path / "lipdub_plugins.py").write_text(PLUGIN_SOURCE.replace('"invert"', '"feather"'))
    pm = PluginManager(tmp_path, autoload=False)
    with pytest.raises(PluginError, match="'feather' is offered by both"):
        pm.choices("blender")


def test_broken_local_plugin_names_the_file(tmp_path: Path):
    (tmp_path / "lipdub_plugins.py").write_text("import does_not_exist\n")
    with pytest.raises(PluginError, match=r"lipdub_plugins\.py: failed to import"):
        PluginManager(tmp_path, autoload=False)


def test_every_stage_has_a_hook_and_every_hook_a_stage_or_role():
    specs = {name for name in dir(hookspecs) if name.startswith("lipdub_")}
    assert {s.hook for s in STAGES.values()} | {"lipdub_shot_event"} == specs


def test_every_hook_is_documented_and_tested():
    """Fails when a hook lacks a docstring, a mention in docs/plugins.md, or a test using it."""
    docs = (REPO / "docs" / "plugins.md").read_text()
    tests = "\n".join(
        p.read_text() for p in (REPO / "tests").rglob("test_*.py") if p.name != "test_plugins.py"
    )
    tests += PLUGIN_SOURCE
    tree = ast.parse((REPO / "lipdub" / "hookspecs.py").read_text())
    hooks = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert hooks
    for hook in hooks:
        assert ast.get_docstring(hook), f"{hook.name} has no docstring"
        assert f"`{hook.name}" in docs, f"{hook.name} is not documented in docs/plugins.md"
        assert hook.name in tests, f"no test exercises {hook.name}"
