"""The built-in generators satisfy the protocols the renderer dispatches on, by declaration."""

from __future__ import annotations

from lipdub.plugin_manager import PluginManager
from lipdub.render.protocols import Generator, NativeGenerator, UnchangedPicture


def test_each_generator_is_what_it_declares() -> None:
    pm = PluginManager(autoload=False)

    def build(name: str, **options: object) -> object:
        reg = pm.get("generator", name)
        return reg.choice.factory({**reg.choice.options, **options})

    passthrough = build("passthrough")
    assert isinstance(passthrough, UnchangedPicture) and isinstance(passthrough, Generator)
    stylesync = build("stylesync", weights="random-init", model="lite", device="cpu")
    assert isinstance(stylesync, Generator) and not isinstance(stylesync, UnchangedPicture)
    exemplar = build("exemplar")
    assert isinstance(exemplar, NativeGenerator) and not isinstance(exemplar, UnchangedPicture)


def test_a_look_alike_attribute_is_not_a_declaration() -> None:
    class Probed:  # What the renderer used to probe for with getattr.
        is_passthrough = True

    assert not isinstance(Probed(), UnchangedPicture)
