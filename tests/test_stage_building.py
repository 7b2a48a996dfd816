"""One way to build any stage: the plugin manager gives a choice exactly its declared options,
the shared settings it declares and (for the chosen one) its stage's block; anything else is
refused by name, whatever the stage or plugin."""

from __future__ import annotations

import pytest

from lipdub.config.settings import Settings, check_layer, resolve
from lipdub.errors import PluginError
from lipdub.plugin_manager import PluginManager


@pytest.fixture(scope="module")
def pm() -> PluginManager:
    return PluginManager(autoload=False)


def test_an_undeclared_option_is_refused_naming_stage_choice_and_known_options(pm):
    with pytest.raises(PluginError) as info:
        pm.create("blender", "feather", {"colour_match": False})
    msg = str(info.value)
    assert "blender 'feather' has no option 'colour_match'" in msg
    assert "did you mean 'color_match'" in msg and "(its options: color_match)" in msg
    with pytest.raises(PluginError, match=r"masks 'u-shape' has no option 'max_gap'"):
        pm.create("masks", "u-shape", {"max_gap": 3})  # The tracker's, not the planner's.


def test_a_value_of_another_type_than_the_default_is_refused(pm):
    with pytest.raises(PluginError, match=r"option 'levels' must be int like its default 4"):
        pm.create("blender", "laplacian", {"levels": "5"})
    with pytest.raises(PluginError, match=r"option 'color_match' must be bool"):
        pm.create("blender", "feather", {"color_match": 1})
    assert pm.create("executor", "ray", {"num_cpus": 2}).num_cpus == 2.0  # An int for a float.


def test_the_chosen_choice_gets_its_block_and_the_shared_settings_it_declares(pm):
    s = resolve(
        check_layer(
            {
                "generator": "stylesync",
                "device": "cpu",
                "batch_size": 3,
                "precision": "fp32",
                "blender": "laplacian",
                "stage_options": {"blender": {"levels": 2}},
            },
            "x",
        )
    )
    gen = pm.options_for("generator", s)
    assert gen["device"] == "cpu" and gen["batch_size"] == 3 and gen["precision"] == "fp32"
    assert gen["model"] == s.model and "weights" in gen
    assert pm.options_for("blender", s) == {"levels": 2}  # A blender declares no shared one.
    assert pm.build("blender", s).levels == 2


def test_a_fallback_choice_gets_the_shared_settings_but_not_the_chosen_ones_block(pm):
    s = resolve(
        check_layer({"generator": "exemplar", "stage_options": {"generator": {"holdout": 7}}}, "x")
    )
    assert pm.options_for("generator", s) == {"holdout": 7}  # exemplar declares no shared one.
    fallback = pm.options_for("generator", s, "stylesync")
    assert "holdout" not in fallback and fallback["device"] == Settings().device
