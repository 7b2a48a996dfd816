"""``lipdub shots import``: the editor's cut (OTIO, CMX 3600 EDL, FCP XML) as a shots file."""

from __future__ import annotations

from pathlib import Path

import click

from lipdub.errors import ConfigError
from lipdub.timeline.cut import parse_rate
from lipdub.timeline.importer import ImportOptions, import_cut, write_shots


@click.group()
def shots() -> None:
    """Shot lists from editorial timelines."""


def _pairs(values: tuple[str, ...], option: str, what: str) -> tuple[tuple[str, str], ...]:
    out = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise ConfigError(f"{option} {value!r}: expected NAME={what}")
        out.append((name, rest))
    return tuple(out)


@shots.command("import")
@click.argument("cut", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("shots.yaml"),
    show_default=True,
    help="The shots file to write (paths in it are relative to its folder).",
)
@click.option("--track", help="Video track: its number (1, V2) or name. Default: the first.")
@click.option(
    "--media",
    "media_dirs",
    multiple=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="Folder to find media in by file, reel or clip name (repeatable; needed for most EDLs).",
)
@click.option("--rate", help="An EDL's frame rate (23.976, 25, 29.97...); default: its media's.")
@click.option(
    "--handles",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Extra frames rendered each side of every clip, so editorial can trim.",
)
@click.option(
    "--dub",
    "dubs",
    multiple=True,
    help="NAME=PATTERN: the dub file per shot, e.g. de=audio/de/{id}.wav ({id} {event} {clip} "
    "{reel}; repeatable, one per language).",
)
@click.option(
    "--dub-preroll",
    is_flag=True,
    help="The --dub files start at the shot's first handle frame (they carry the handles' "
    "audio). Default: each starts at its clip's record in point; the head handle is silence.",
)
@click.option(
    "--dub-track",
    "dub_tracks",
    multiple=True,
    help="NAME=TRACK: the dub from the cut's audio track (A2 or its name), e.g. de=A2.",
)
@click.option(
    "--actor",
    "actors",
    multiple=True,
    help="NAME for every shot, or SHOT=NAME for one shot (its id, event number or clip name); "
    "repeatable. Default: every face, matched to actors by identity.",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def import_(
    cut, out, track, media_dirs, rate, handles, dubs, dub_preroll, dub_tracks, actors, force
) -> None:
    """Turn each clip of CUT's video track into a shot (.otio, .edl, .xml).

    Clips that cannot be dubbed (a speed change, a freeze frame, missing media, a source range
    outside its media, no dub audio) are listed with their event number and the reason, and
    kept in the shots file's `timeline.refused`; the rest of the cut is imported. Gaps, black
    and nested sequences are skipped with a note.
    """
    if out.exists() and not force:
        raise ConfigError(f"{out} exists; give --force to overwrite it, or another --out")
    options = ImportOptions(
        track=track,
        media_dirs=tuple(media_dirs),
        rate=parse_rate(rate) if rate else None,
        handles=handles,
        dubs=_pairs(dubs, "--dub", "PATTERN"),
        dub_preroll=dub_preroll,
        dub_tracks=_pairs(dub_tracks, "--dub-track", "TRACK"),
        actors=tuple(
            (key, name) if sep else (None, key)
            for key, sep, name in (a.partition("=") for a in actors)
        ),
    )
    result = import_cut(cut, out, options)
    write_shots(result, out, cut)
    for note in result.skipped:
        click.echo(f"skipped: {note}", err=True)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    for r in result.refused:
        click.echo(f"refused: event {r['event']} (clip {r['clip']!r}): {r['reason']}", err=True)
    click.echo(
        f"{out}: {len(result.shots)} shots, {len(result.refused)} clips refused, "
        f"{len(result.skipped)} skipped",
        err=True,
    )
