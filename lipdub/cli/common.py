"""Options and helpers shared by the commands."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from lipdub.config.plan import CutDetector
from lipdub.config.project import ProjectConfig, default_project, find_project, load_project
from lipdub.config.settings import resolve
from lipdub.errors import ConfigError
from lipdub.plugin_manager import PluginManager

project_option = click.option(
    "--project",
    "project_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Project folder (default: the nearest folder with a lipdub.toml, upwards).",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per line instead of a progress bar."
)


def resolve_project(project_dir: Path | None, near: Path | None = None) -> ProjectConfig:
    """The project named by --project, else found above ``near`` or the current folder."""
    if project_dir is not None:
        if not (project_dir / "lipdub.toml").is_file():
            raise ConfigError(f"{project_dir}: no lipdub.toml there; run `lipdub project init`")
        return load_project(project_dir.resolve())
    for start in (near, Path.cwd()):
        if start is not None:
            root = find_project(start)
            if root is not None:
                return load_project(root)
    return default_project(Path.cwd())


def wants_json(as_json: bool) -> bool:
    """JSON lines when asked, or when stdout is not a terminal (a farm's log)."""
    return as_json or not sys.stdout.isatty()


def cli_settings(**values: Any) -> dict[str, Any]:
    """The command line's settings layer: only the options actually given."""
    return {k: v for k, v in values.items() if v is not None}


def cut_detector(
    plugins: PluginManager, project: ProjectConfig, cli: Mapping[str, Any]
) -> CutDetector:
    """The project's shot detector as a function, for shots with ``range: auto``."""

    def detect(path: Path, start: int, stop: int, conform: bool = False) -> list[int]:
        from lipdub.analysis.shot_analysis import (
            detect_cuts,  # Only when a shot says `range: auto`.
        )

        settings = resolve(project.layer, cli)
        return detect_cuts(path, start, stop, plugins.build("shots", settings), conform)

    return detect
