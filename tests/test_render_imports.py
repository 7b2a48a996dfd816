"""A default render loads no torch: its import costs 1-2 s at every render's start (a farm runs
one process a shot), and nothing on the default path — BlazeFace and the mesh on LiteRT, the
exemplar generator, the rule-based driver, QC without the SyncNet — runs a torch model."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

CODE = """
import sys
from lipdub.cli import main  # The CLI, as `lipdub render` starts.
from lipdub.config.settings import Settings
from lipdub.plugin_manager import PluginManager
from lipdub.render import jobs, pipeline  # The render's modules.
from lipdub.eval import qc
from lipdub.render.fingerprint import model_files

pm = PluginManager(autoload=False)  # Registers every built-in plugin.
settings = Settings()
for stage in ("generator", "faces", "landmarker"):
    pm.build(stage, settings)  # The default choices, built.
assert model_files(settings) == [], model_files(settings)
assert "torch" not in sys.modules, "torch was imported"
"""


def test_the_default_render_path_imports_no_torch():
    done = subprocess.run(
        [sys.executable, "-c", CODE], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
