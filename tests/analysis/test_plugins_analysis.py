"""The four built-in analysis plugins: hooks, names, factories and the stage protocols."""

from __future__ import annotations

import importlib

import pluggy
import pytest

from lipdub import hookspecs
from lipdub.analysis.protocols import FaceDetector, MaskPlanner, ShotDetector, Tracker
from lipdub.analysis.settings import AnalysisSettings
from lipdub.stages import STAGES, StageChoice

PLUGINS = {
    "lipdub.plugins.shots_scenedetect": ("shots", ["scenedetect"], ShotDetector),
    "lipdub.plugins.faces_blazeface": ("faces", ["blazeface"], FaceDetector),
    "lipdub.plugins.faces_dlib": ("faces", ["dlib-hog", "dlib-cnn"], FaceDetector),
    "lipdub.plugins.tracker_iou": ("tracker", ["iou-appearance"], Tracker),
    "lipdub.plugins.masks_ushape": ("masks", ["u-shape"], MaskPlanner),
}
HOOKS = {
    "shots": "lipdub_shot_detectors",
    "faces": "lipdub_face_detectors",
    "tracker": "lipdub_trackers",
    "masks": "lipdub_mask_planners",
}


@pytest.mark.parametrize("module_name", sorted(PLUGINS))
def test_each_hook_offers_its_named_choices_and_builds_protocol_objects(module_name):
    stage, names, protocol = PLUGINS[module_name]
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(importlib.import_module(module_name))
    assert STAGES[stage].hook == HOOKS[stage]
    hook = getattr(pm.hook, HOOKS[stage])
    choices = [c for batch in hook() for c in batch]
    assert [c.name for c in choices] == names
    options = AnalysisSettings().as_options()
    for choice in choices:
        assert isinstance(choice, StageChoice) and choice.summary
        assert choice.licence or stage != "faces"  # Every face model says its terms.
        for key in choice.options:
            assert key in options or key == "shot_method", key
        built = choice.factory({**options, **choice.options})
        assert isinstance(built, protocol)
        assert built.name == choice.name


@pytest.mark.parametrize("stage", sorted(HOOKS))
def test_each_stage_default_is_a_builtin_choice(stage):
    offered = [n for s, names, _ in PLUGINS.values() if s == stage for n in names]
    assert STAGES[stage].default in offered


def test_factories_take_settings_from_the_options():
    from lipdub.plugins.masks_ushape import build as masks
    from lipdub.plugins.shots_scenedetect import build as shots
    from lipdub.plugins.tracker_iou import build as tracker

    assert tracker({"max_gap": 2}).settings.max_gap == 2
    assert masks({"mask_chin_margin": 0.5}).settings.mask_chin_margin == 0.5
    assert shots({"shot_method": "content", "shot_threshold": 27.0}).method == "content"
