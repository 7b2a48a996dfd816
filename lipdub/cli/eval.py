"""``lipdub eval``: measure a generator on self-driven and cross-driven test clips."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("eval")
@click.argument("clips", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    required=True,
    help="Prepared clips (`lipdub data prepare`); CLIPS given here are prepared into it first.",
)
@click.option("--weights", help="Generator checkpoint name or path (default: the manifest's).")
@click.option(
    "--syncnet", help="SyncNet checkpoint (name or path) for LSE/offset (default: the manifest's)."
)
@click.option("--split", default="test", show_default=True, help="Split of a clips TSV.")
@click.option(
    "--speakers",
    default="",
    help="Comma-separated speakers: evaluate only their clips (e.g. a run's --val-speakers).",
)
@click.option(
    "--audio-tsv",
    type=click.Path(exists=True, path_type=Path),
    help="Speech files for cross-driven dubbing (an audio.tsv with a 'file' column).",
)
@click.option(
    "--audio-scale",
    type=click.FloatRange(min=0, min_open=True),
    help="Generator audio scale s (default: the checkpoint's, as `lipdub render` uses).",
)
@click.option("--max-frames", type=int, default=100, show_default=True, help="Frames per clip.")
@click.option("--out", type=click.Path(path_type=Path), help="Write JSON (and a .md table) here.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def eval_(
    clips: tuple[Path, ...],
    data: Path,
    weights: str | None,
    syncnet: str | None,
    split: str,
    speakers: str,
    audio_tsv: Path | None,
    audio_scale: float | None,
    max_frames: int,
    out: Path | None,
    device: str,
) -> None:
    """Measure PSNR, SSIM, LMD, LSE-D/C, CSIM and AV offset on self- and cross-driven renders.

    Rows: the model, the model with the audio zeroed, a copy-the-reference baseline and the real
    video. LSE-D/C come from lipdub's own SyncNet, so they are not comparable to published values.
    """
    from lipdub.eval.evaluate import evaluate, format_table, write_results
    from lipdub.model.syncnet_file import resolve_syncnet

    if clips:
        from lipdub.data.prepare import prepare, specs_from_args

        prepare(specs_from_args(clips, split), data)
    result = evaluate(
        data,
        split,
        weights,
        resolve_syncnet(syncnet),
        audio_tsv=audio_tsv,
        max_frames=max_frames,
        device=device,
        audio_scale=audio_scale,
        speakers=tuple(s.strip() for s in speakers.split(",") if s.strip()),
    )
    if out is not None:
        write_results(result, out)
    click.echo(format_table(result))
