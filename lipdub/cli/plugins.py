"""``lipdub plugins list``: every stage, its choices, and where each came from."""

from __future__ import annotations

import json
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lipdub.cli.common import json_option, project_option, resolve_project
from lipdub.plugin_manager import PluginManager
from lipdub.stages import STAGES


@click.group()
def plugins() -> None:
    """Inspect plugins."""


@plugins.command("list")
@project_option
@json_option
def list_plugins(project_dir, as_json: bool) -> None:
    """Show every stage, the choices for it, which is selected, each choice's origin and the
    options it takes (set them in [stage_options.STAGE])."""
    project = resolve_project(project_dir)
    manager = PluginManager(project.root if project.manifest else None)
    chosen = {
        **{k: v.default for k, v in STAGES.items()},
        **{k: v for k, v in project.layer.items() if k in STAGES},
    }
    rows: list[dict[str, Any]] = []
    for stage, choices in manager.all_choices().items():
        if not choices:
            rows.append(
                {
                    "stage": stage,
                    "name": "",
                    "selected": False,
                    "source": "",
                    "summary": "(no plugin offers this stage)",
                }
            )
        for name, reg in choices.items():
            rows.append(
                {
                    "stage": stage,
                    "name": name,
                    "selected": chosen[stage] == name,
                    "source": reg.source,
                    "plugin": reg.plugin,
                    "summary": reg.choice.summary,
                    "licence": reg.choice.licence or "no model (code only)",
                    "options": dict(reg.choice.options),
                }
            )
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, default=str))
        return
    table = Table(
        title="lipdub stages and their choices (* = selected)",
        caption=escape("options are set in lipdub.toml under [stage_options.STAGE]"),
    )
    # The options column is what a user copies into lipdub.toml: one name a line, never cut
    # (it is as wide as the longest name); the prose columns wrap into what is left.
    longest = max((len(o) for row in rows for o in row.get("options", {})), default=0)
    for col in ("stage", "choice", "from", "what it does", "licence"):
        table.add_column(col, overflow="fold")
    table.add_column("options", min_width=longest, no_wrap=True)
    for row in rows:
        mark = "* " if row["selected"] else "  "
        options = "\n".join(row.get("options", {}))
        table.add_row(
            row["stage"],
            mark + row["name"],
            row["source"],
            row["summary"],
            row.get("licence", ""),
            options,
        )
    Console().print(table)
    for stage, info in STAGES.items():
        if chosen[stage] not in manager.choices(stage):
            click.echo(
                f"warning: stage {stage!r} selects {chosen[stage]!r}, which no plugin "
                f"offers ({info.summary})",
                err=True,
            )
