"""The plugin contract (lipdub.testing.contract) over lipdub's own blenders and generators, and
proof that it catches a plugin that breaks it."""

from __future__ import annotations

import numpy as np
import pytest

from lipdub.hookspecs import hookimpl
from lipdub.plugin_manager import PluginManager
from lipdub.stages import StageChoice
from lipdub.testing.contract import (
    ContractError,
    check_blender,
    check_generator,
    check_landmarker,
)

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
    assert builtin(pm, "landmarker") == ["dlib68", "mediapipe"]


@pytest.mark.parametrize("name", ["mediapipe", "dlib68"])
def test_both_landmarkers_keep_the_contract(pm: PluginManager, name: str):
    check_landmarker(pm, name)


def test_the_two_landmarkers_agree_on_the_astronaut(pm: PluginManager):
    # The mesh is read through lipdub.analysis.mesh68's table: on a frontal face its 68 points
    # sit where dlib's do. IOD = distance of the eye centres; the table's medians on the test
    # clips are 0.02-0.15 IOD per point (bench/results.md), so the mouth's mean stays under 0.1.
    mesh, dlib = check_landmarker(pm, "mediapipe"), check_landmarker(pm, "dlib68")
    iod = float(np.linalg.norm(dlib[36:42].mean(axis=0) - dlib[42:48].mean(axis=0)))
    mouth = np.linalg.norm(mesh[48:68] - dlib[48:68], axis=1).mean() / iod
    assert mouth < 0.1, mouth


def test_a_landmarker_that_mirrors_the_face_is_caught(pm: PluginManager):
    class Mirrored:
        name = "mirrored"

        def landmarks(self, image, boxes):
            pts = pm.create("landmarker", "mediapipe").landmarks(image, boxes)
            x0 = np.array([b[0] + b[2] for b in boxes], np.float32)[:, None]
            pts[..., 0] = x0 - pts[..., 0]  # Mirror about the box's vertical midline.
            return pts

    class Plugin:
        @hookimpl
        def lipdub_landmarkers(self):
            return [StageChoice("mirrored", lambda options: Mirrored())]

    local = PluginManager(autoload=False)
    local.pm.register(Plugin(), name="mirrored-plugin")
    with pytest.raises(ContractError, match="right eye"):
        check_landmarker(local, "mirrored")


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
