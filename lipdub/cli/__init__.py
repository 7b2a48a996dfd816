"""The ``lipdub`` command line. Commands only parse options and call into the library.

Exit codes: 0 everything worked, 1 a job failed, 2 a usage or configuration error. Errors the user
can fix are printed as one line (``error: FILE:LINE: what is wrong and how to fix it``).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from lipdub import __version__
from lipdub.errors import (
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    LipdubError,
    Terminated,
)


class LipdubGroup(click.Group):
    """A group that turns :class:`LipdubError` into a one-line message and its exit code, and
    an interrupt into the code a shell expects (130 for SIGINT, 143 for SIGTERM)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LipdubError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            terminated = isinstance(exc, Terminated)
            click.echo(f"interrupted ({'SIGTERM' if terminated else 'SIGINT'})", err=True)
            ctx.exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED)


@click.group(cls=LipdubGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lipdub")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Re-sync actors' lips in finished footage to a dubbed audio track, shot by shot."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def _register() -> None:
    from lipdub.cli import analyze, data, demo, personalize, plugins, project, render, shots, train
    from lipdub.cli import eval as eval_cli

    main.add_command(project.project)
    main.add_command(render.render)
    main.add_command(plugins.plugins)
    main.add_command(analyze.analyze)
    main.add_command(demo.demo)
    main.add_command(personalize.personalize)
    main.add_command(train.train)
    main.add_command(eval_cli.eval_)
    main.add_command(data.data)
    main.add_command(shots.shots)


_register()

__all__ = ["EXIT_USAGE", "main"]
