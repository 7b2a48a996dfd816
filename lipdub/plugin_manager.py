"""Loads lipdub's plugins and looks up stage choices by name.

Three sources, in this order: the built-ins (an explicit tuple, registered through the same hooks
a third party uses), packages with an entry point in the ``lipdub`` group (skipped when
``LIPDUB_DISABLE_PLUGIN_AUTOLOAD`` is set), and a ``lipdub_plugins.py`` beside the project's
lipdub.toml. Two plugins offering one name for one stage is an error, never a silent override.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from lipdub import hookspecs
from lipdub.config.settings import Settings
from lipdub.config.stage_options import same_kind
from lipdub.errors import PluginError, did_you_mean
from lipdub.stages import STAGES, StageChoice

log = logging.getLogger(__name__)

BUILTIN_PLUGINS = (
    "lipdub.plugins.shots_scenedetect",
    "lipdub.plugins.faces_blazeface",
    "lipdub.plugins.faces_dlib",
    "lipdub.plugins.landmarkers",
    "lipdub.plugins.tracker_iou",
    "lipdub.plugins.masks_ushape",
    "lipdub.plugins.generator_stylesync",
    "lipdub.plugins.generator_passthrough",
    "lipdub.plugins.generator_exemplar",
    "lipdub.plugins.blenders",
    "lipdub.plugins.executors",
    "lipdub.plugins.events_log",
    "lipdub.plugins.personalizer_stylesync",
)
AUTOLOAD_ENV = "LIPDUB_DISABLE_PLUGIN_AUTOLOAD"
LOCAL_PLUGIN_FILE = "lipdub_plugins.py"


@dataclass(frozen=True)
class Registered:
    """A stage choice and where it came from (for `lipdub plugins list`)."""

    stage: str  # Stage name, e.g. "blender".
    choice: StageChoice  # The record the plugin returned.
    plugin: str  # Plugin (module) name that offered it.
    source: str  # "built-in", "entry point: DIST VERSION" or the local file's path.


class PluginManager:
    """The loaded plugins of one lipdub run."""

    def __init__(self, project_root: Path | None = None, autoload: bool | None = None) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._sources: dict[str, str] = {}
        for name in BUILTIN_PLUGINS:
            self._register(importlib.import_module(name), name, "built-in")
        if autoload is None:
            autoload = not os.environ.get(AUTOLOAD_ENV)
        if autoload:
            self._load_entry_points()
        if project_root is not None:
            local = project_root / LOCAL_PLUGIN_FILE
            if local.is_file():
                self._register(_import_file(local), f"local:{local}", str(local))
        self._choices: dict[str, dict[str, Registered]] | None = None

    def _register(self, module: ModuleType | object, name: str, source: str) -> None:
        try:
            self.pm.register(module, name=name)
        except ValueError as exc:
            raise PluginError(f"plugin {name!r} could not be registered: {exc}") from None
        self._sources[name] = source

    def _load_entry_points(self) -> None:
        before = set(self.pm.get_plugins())
        try:
            self.pm.load_setuptools_entrypoints(hookspecs.PROJECT)
        except Exception as exc:  # A broken third-party package must be named, not crash.
            raise PluginError(
                f"a plugin from the 'lipdub' entry-point group failed: {exc}"
            ) from exc
        for plugin, dist in self.pm.list_plugin_distinfo():
            if plugin not in before:
                name = self.pm.get_name(plugin)
                assert name is not None, "a listed plugin is registered, so it has a name"
                self._sources[name] = f"entry point: {dist.project_name} {dist.version}"

    def choices(self, stage: str) -> dict[str, Registered]:
        """Every choice offered for ``stage``, by name."""
        return self._all()[stage]

    def all_choices(self) -> dict[str, dict[str, Registered]]:
        """Every stage's choices (stage -> name -> Registered)."""
        return self._all()

    def _all(self) -> dict[str, dict[str, Registered]]:
        if self._choices is not None:
            return self._choices
        out: dict[str, dict[str, Registered]] = {}
        for stage, info in STAGES.items():
            found: dict[str, Registered] = {}
            for impl in getattr(self.pm.hook, info.hook).get_hookimpls():
                offered = impl.function() or []
                for choice in offered:
                    if not isinstance(choice, StageChoice):
                        raise PluginError(
                            f"plugin {impl.plugin_name!r}: {info.hook} must return StageChoice "
                            f"records, got {type(choice).__name__}"
                        )
                    if choice.name in found:
                        raise PluginError(
                            f"stage {stage!r}: the name {choice.name!r} is offered by both "
                            f"{found[choice.name].plugin!r} and {impl.plugin_name!r}; "
                            f"uninstall one or set {AUTOLOAD_ENV}=1"
                        )
                    found[choice.name] = Registered(
                        stage, choice, impl.plugin_name, self._sources.get(impl.plugin_name, "?")
                    )
            out[stage] = dict(sorted(found.items()))
        self._choices = out
        return out

    def get(self, stage: str, name: str) -> Registered:
        """The choice ``name`` for ``stage``; an unknown name lists the available ones."""
        available = self.choices(stage)
        if name not in available:
            names = list(available)
            raise PluginError(
                f"no {stage} called {name!r}{did_you_mean(name, names)} "
                f"(available: {', '.join(names) or 'none'}; see `lipdub plugins list`)"
            )
        return available[name]

    def create(self, stage: str, name: str, options: Mapping[str, Any] | None = None) -> Any:
        """Build the object for choice ``name`` of ``stage`` with ``options`` over the options
        it declares: the factory receives exactly those, so a misspelt option is refused here,
        for every stage and every plugin alike, not read as a default somewhere inside.

        Raises:
            PluginError: an unknown choice, or an option the choice does not declare.
        """
        reg = self.get(stage, name)
        self.check_options(stage, name, options or {})
        return reg.choice.factory({**reg.choice.options, **(options or {})})

    def check_options(self, stage: str, name: str, options: Mapping[str, Any]) -> None:
        """Refuse options that choice ``name`` of ``stage`` does not declare, and values whose
        type differs from the declared default's (a None default takes anything).

        Raises:
            PluginError: naming the stage, the choice, the option and the known options.
        """
        declared = self.get(stage, name).choice.options
        known = ", ".join(declared) or "none"
        for key, value in options.items():
            if key not in declared:
                raise PluginError(
                    f"{stage} {name!r} has no option {key!r}"
                    f"{did_you_mean(str(key), list(declared))} (its options: {known})"
                )
            default = declared[key]
            if default is not None and not same_kind(value, default):
                raise PluginError(
                    f"{stage} {name!r}: option {key!r} must be {type(default).__name__} like "
                    f"its default {default!r}, got {value!r}"
                )

    def options_for(
        self, stage: str, settings: Settings, name: str | None = None
    ) -> dict[str, Any]:
        """The options a render gives choice ``name`` of ``stage`` (default: the settings'
        choice): the shared top-level settings it declares (``device``, ``weights``...:
        :meth:`Settings.shared`) and, for the settings' own choice, the stage's block
        (``stage_options.<stage>``). A fallback choice gets no block: the block was written for
        the chosen one.
        """
        chosen = settings.stage(stage)
        name = name or chosen
        options = settings.shared(self.get(stage, name).choice.options)
        if name == chosen:
            options.update(settings.options(stage))
        return options

    def build(self, stage: str, settings: Settings, name: str | None = None) -> Any:
        """Build stage ``stage`` (its choice ``name``, default the settings') for a render with
        ``settings``: the one way every stage is made (:meth:`options_for`, then
        :meth:`create`)."""
        name = name or settings.stage(stage)
        return self.create(stage, name, self.options_for(stage, settings, name))

    def emit(self, event: Any) -> None:
        """Send a shot event to every plugin implementing ``lipdub_shot_event``."""
        for impl in self.pm.hook.lipdub_shot_event.get_hookimpls():
            try:
                impl.function(event=event)
            except Exception:  # An observer must never stop a render; it is logged.
                log.exception("plugin %s failed handling a shot event", impl.plugin_name)


def _import_file(path: Path) -> ModuleType:
    name = "lipdub_local_plugins"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # The user's file: say which and why.
        raise PluginError(f"{path}: failed to import: {exc}") from exc
    return module
