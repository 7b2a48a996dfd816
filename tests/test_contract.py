"""The plugin contract (lipdub.testing.contract) over lipdub's own blenders and generators, and
proof that it catches a plugin that breaks it."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub.hookspecs import hookimpl
from lipdub.plugin_manager import PluginManager
from lipdub.stages import StageChoice
from lipdub.testing.contract import ContractError, check_blender, check_generator

#: Options that make a generator cheap and self-contained on a CPU (no trained weights needed).
CHEAP = {"stylesync": {"weights": "random-init", "model": "lite", "device": "cpu"}}


@pytest.fixture(scope="module")
def pm() -> PluginManager:
    return PluginManager(autoload=False)


def builtin(pm: PluginManager, stage: str) -> list[str]:
    return [n for n, r in pm.choices(stage).items() if r.source == "built-in"]


def test_the_builtins_are_all_covered(pm: PluginManager):
    assert builtin(pm, "blender") == ["feather", "laplacian", "poisson"]
    assert builtin(pm, "generator") == ["exemplar", "passthrough", "stylesync"]


@pytest.mark.parametrize("name", ["feather", "laplacian", "poisson"])
def test_every_builtin_blender_keeps_the_contract(pm: PluginManager, name: str):
    check_blender(pm, name)


def test_a_blender_option_is_honoured_under_the_contract(pm: PluginManager):
    check_blender(pm, "feather", {"color_match": False})
    check_blender(pm, "laplacian", {"levels": 2})


@pytest.mark.parametrize("name", ["passthrough", "stylesync"])
def test_crop_generators_return_t_crops_of_s_s_3_uint8(pm: PluginManager, name: str):
    assert check_generator(pm, name, CHEAP.get(name)).startswith("crop")


def test_the_exemplar_generator_is_checked_for_its_native_surface_only(pm: PluginManager):
    # Its bank is the actor's own frames: a run on synthetic pixels would prove nothing, so the
    # whole path runs on real footage in tests/render/test_exemplar_shared.py.
    assert check_generator(pm, "exemplar").startswith("native")


class _Leaky:
    """Changes every pixel a little, also where the mask is 0."""

    def blend(self, frame, face, mask):
        return np.clip(frame.astype(np.int16) + 1, 0, 255).astype(np.uint8)


class _Float:
    def blend(self, frame, face, mask):
        return frame.astype(np.float32)


class _Idle:
    def blend(self, frame, face, mask):
        return frame.copy()


class _Short:
    resolution = 32

    def generate(self, clip, progress=None):
        for crop in clip.crops[:-1]:
            yield np.asarray(crop)


class BadPlugins:
    @hookimpl
    def lipdub_blenders(self):
        return [
            StageChoice("leaky", lambda o: _Leaky()),
            StageChoice("float", lambda o: _Float()),
            StageChoice("idle", lambda o: _Idle()),
        ]

    @hookimpl
    def lipdub_generators(self):
        return [StageChoice("short", lambda o: _Short())]


@pytest.mark.parametrize(
    ("stage", "name", "broken"),
    [
        ("blender", "leaky", "changed pixels where the mask is 0"),
        ("blender", "float", "returned dtype float32, not uint8"),
        ("blender", "idle", "did not move the pixels under mask 1 to the face"),
        ("generator", "short", "gave 6 crops for 7"),
    ],
)
def test_the_contract_fails_a_plugin_that_breaks_it(stage: str, name: str, broken: str):
    pm = PluginManager(autoload=False)
    pm.pm.register(BadPlugins(), name="bad")
    check = check_blender if stage == "blender" else check_generator
    with pytest.raises(ContractError, match=f"{stage} '{name}': {broken}"):
        check(pm, name)
