"""Commands declared with their options whose engines are not built yet.

Each says so plainly and exits with code 2, rather than pretending to work.
"""

from __future__ import annotations

from pathlib import Path

import click

from lipdub.cli.common import json_option, project_option
from lipdub.errors import LipdubError


class NotBuiltYet(LipdubError):
    """The command exists but its engine has not landed."""

    exit_code = 2


def _not_yet(what: str) -> None:
    raise NotBuiltYet(f"`lipdub {what}` is declared but not implemented yet in this version")


@click.command()
@click.option("--actor", required=True, help="Actor name from lipdub.toml [actors.NAME].")
@click.option("--steps", type=int, help="Optimisation steps budget.")
@click.option("--minutes", type=float, help="Wall-time budget in minutes.")
@click.option("--device", help="auto, cpu, cuda or cuda:N.")
@click.option("--executor", help="local or ray (runs as a GPU task).")
@click.option("--resume/--restart", default=True, help="Continue a previous run if present.")
@json_option
@project_option
def personalize(**_: object) -> None:
    """Fine-tune the generator on one actor's own footage (ΔW / ΔP, StyleSync §3.3)."""
    _not_yet("personalize")


@click.command("eval")
@click.argument("clips", nargs=-1, type=click.Path(path_type=Path))
@click.option("--weights", help="Checkpoint name or path.")
@click.option("--split", default="test", show_default=True, help="Split of a clips TSV.")
@click.option("--out", type=click.Path(path_type=Path), help="Write JSON results here.")
@click.option("--device", help="auto, cpu, cuda or cuda:N.")
def eval_(**_: object) -> None:
    """Measure PSNR, SSIM, LMD, LSE-D/C, CSIM and AV offset on self- and cross-driven renders."""
    _not_yet("eval")


@click.group()
def train() -> None:
    """Train SyncNet and the generator."""


@train.command("syncnet")
@click.option("--data", type=click.Path(path_type=Path), required=True, help="Prepared dataset.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--max-minutes", type=float, help="Wall-time budget.")
@click.option("--device", help="auto, cpu, cuda or cuda:N.")
def train_syncnet(**_: object) -> None:
    """Train the lip-sync expert on in-sync vs shifted pairs."""
    _not_yet("train syncnet")


@train.command("generator")
@click.option("--data", type=click.Path(path_type=Path), required=True, help="Prepared dataset.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--config", type=click.Choice(["full", "lite"]), default="full", show_default=True)
@click.option("--max-minutes", type=float, help="Wall-time budget.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
@click.option("--device", help="auto, cpu, cuda or cuda:N.")
def train_generator(**_: object) -> None:
    """Train the StyleSync generator (L_adv + 10·L_rec + L_sync)."""
    _not_yet("train generator")


COMMANDS = (personalize, eval_, train)
