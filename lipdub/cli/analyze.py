"""``lipdub analyze``: shots, faces, tracks and actors of a shots file or one clip."""

from __future__ import annotations

from pathlib import Path

import click

from lipdub.cli.common import json_option, project_option
from lipdub.errors import LipdubError


@click.command()
@click.argument("shots_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--video", type=click.Path(dir_okay=False, path_type=Path), help="One clip.")
@click.option("--shot", "shot_ids", multiple=True, help="Only this shot (repeatable).")
@click.option(
    "--overlay",
    type=click.Path(path_type=Path),
    help="Write a debug overlay video (a folder for a shots file).",
)
@click.option("--cuts", is_flag=True, help="Only list the cuts (frame numbers and timecodes).")
@json_option
@project_option
def analyze(**_: object) -> None:
    """Detect cuts, faces, landmarks, tracks and actors; optionally draw a debug overlay."""
    raise LipdubError("`lipdub analyze` is not implemented yet in this version")
