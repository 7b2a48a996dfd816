"""``lipdub data``: prepare training / evaluation data from talking-head clips."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group()
def data() -> None:
    """Prepare training and evaluation data."""


@data.command("prepare")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--split", help="Keep only this split of a clips TSV (e.g. train, test).")
@click.option("--size", type=int, default=128, show_default=True, help="Crop side (128 or 256).")
@click.option("--cache", type=click.Path(path_type=Path), help="Analysis cache folder.")
@click.option(
    "--syncnet",
    help="SyncNet checkpoint (name or .safetensors) to estimate each clip's AV offset with.",
)
@click.option("--device", default="cpu", show_default=True, help="Device for --syncnet.")
def prepare_cmd(
    inputs: tuple[Path, ...],
    out: Path,
    split: str | None,
    size: int,
    cache: Path | None,
    syncnet: str | None,
    device: str,
) -> None:
    """Analyse, align and crop VIDEOS (or the clips of a TSV) into OUT, with audio and mels.

    Without --syncnet the audio/video offsets stay unestimated; run again with a trained SyncNet
    (a clip already prepared is not analysed again) to measure and store them.
    """
    from lipdub.data.prepare import prepare, specs_from_args

    infos = prepare(specs_from_args(inputs, split), out, size=size, cache_dir=cache)
    click.echo(f"prepared {len(infos)} clip(s) into {out}")
    if syncnet:
        from lipdub.model.syncnet_file import resolve_syncnet
        from lipdub.train.offsets import estimate_offsets

        net = resolve_syncnet(syncnet)
        ids = {i["clip_id"] for i in infos}
        found = estimate_offsets(out, net, device=device, clip_ids=ids)
        click.echo(json.dumps(found, indent=1))
