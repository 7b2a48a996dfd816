"""``lipdub demo``: build the self-contained demo project and render it."""

from __future__ import annotations

from pathlib import Path

import click

from lipdub.demo import build_demo


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default="demo")
@click.option(
    "--generator",
    help="Generator for the demo render (default: stylesync with the manifest's "
    "default_generator when one is bundled, else passthrough).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON-line events.")
@click.pass_context
def demo(ctx: click.Context, folder: Path, generator: str | None, as_json: bool) -> None:
    """Make a demo project in FOLDER (public-domain portrait + synthetic speech) and render it."""
    from lipdub.cli.render import render
    from lipdub.model.checkpoint import load_manifest

    if generator is None:
        generator = "stylesync" if load_manifest().default_generator else "passthrough"

    click.echo(f"building the demo project in {folder} ...", err=True)
    build_demo(folder, generator=generator)
    if generator == "passthrough":
        click.echo(
            "NOTE: rendering with the 'passthrough' generator: the pipeline runs end to "
            "end (decode, encode, dub mux) but the lips are NOT changed.",
            err=True,
        )
    ctx.invoke(
        render,
        shots_file=folder / "shots.yaml",
        force=True,
        as_json=as_json,
        shot_ids=(),
        actors=(),
    )
