"""``lipdub demo``: build the self-contained demo project and render it."""

from __future__ import annotations

from pathlib import Path

import click

from lipdub.demo import DEMO_SHOTS, build_demo


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default="demo")
@click.option(
    "--generator",
    help="Generator for the demo render (default: the built-in default, exemplar).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON-line events.")
@click.pass_context
def demo(ctx: click.Context, folder: Path, generator: str | None, as_json: bool) -> None:
    """Make a demo project in FOLDER (real talking footage from the GRID corpus, CC BY 4.0, and
    synthetic English and German dubs) and render it: one output per take and language."""
    from lipdub.cli.render import render

    def say(line: str) -> None:
        click.echo(f"  {line}", err=True)

    click.echo(f"building the demo project in {folder} ...", err=True)
    build_demo(folder, generator=generator, progress=say)
    outputs = sum(len(s.lines) for s in DEMO_SHOTS)
    click.echo(
        f"rendering {len(DEMO_SHOTS)} shots into {outputs} outputs in {folder / 'renders'} "
        "(QC report: lipdub-qc.html there) ...",
        err=True,
    )
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
