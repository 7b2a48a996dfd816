"""``lipdub train``: SyncNet first, then the generator (which uses the frozen SyncNet)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click


@click.group()
def train() -> None:
    """Train SyncNet, the mouth landmarks and driver, and the generator."""


CHECKPOINT_OUT = "Checkpoint to write (.safetensors; a .json sidecar goes beside it)."
DEVICE = click.option(
    "--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."
)
SEED = click.option("--seed", type=int, default=0, show_default=True)


def trainer_options(
    out_help: str, batch_size: int, batch_help: str, max_steps: int = 100_000
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The options every trainer on prepared clips shares: --data, --out, the two budgets,
    --batch-size, --device, --train-split / --test-split and --seed."""
    options = (
        click.option(
            "--data", type=click.Path(path_type=Path), required=True, help="Prepared dataset."
        ),
        click.option("--out", type=click.Path(path_type=Path), required=True, help=out_help),
        click.option("--max-minutes", type=float, help="Wall-time budget."),
        click.option(
            "--max-steps", type=int, default=max_steps, show_default=True, help="Step budget."
        ),
        click.option(
            "--batch-size", type=int, default=batch_size, show_default=True, help=batch_help
        ),
        DEVICE,
        click.option("--train-split", default="train", show_default=True),
        click.option(
            "--test-split", default="test", show_default=True, help="Held-out split ('' = none)."
        ),
        SEED,
    )

    def apply(command: Callable[..., None]) -> Callable[..., None]:
        for option in reversed(options):
            command = option(command)
        return command

    return apply


def validation_options(
    every: int, kept: str
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """--val-speakers (held out of training, validated on; ``kept`` says what is kept) and
    --val-every, for the trainers that validate; --val-speakers reaches the command as the
    comma-separated text, :func:`speakers` splits it."""

    def apply(command: Callable[..., None]) -> Callable[..., None]:
        command = click.option(
            "--val-every", type=int, default=every, show_default=True,
            help="Steps between validations.",
        )(command)  # fmt: skip
        return click.option(
            "--val-speakers",
            default="",
            help=f"Comma-separated speakers held out of training and validated on; {kept} is kept.",
        )(command)

    return apply


def speakers(text: str) -> tuple[str, ...]:
    """The speakers of a comma-separated --val-speakers."""
    return tuple(s.strip() for s in text.split(",") if s.strip())


@train.command("syncnet")
@trainer_options("Output folder.", 32, "Pairs per step.")
@click.option("--lr", type=float, default=1e-3, show_default=True, help="Adam learning rate.")
@click.option(
    "--init",
    "init",
    help="Continue from this SyncNet (name or .safetensors); use another --seed for new samples.",
)
def train_syncnet_cmd(
    data: Path,
    out: Path,
    max_minutes: float | None,
    max_steps: int,
    batch_size: int,
    lr: float,
    device: str,
    train_split: str,
    test_split: str,
    seed: int,
    init: str | None,
) -> None:
    """Train the lip-sync expert contrastively over audio shifts; report held-out accuracy."""
    from lipdub.model.syncnet_file import resolve_syncnet
    from lipdub.train.syncnet import SyncTrainSettings, train_syncnet

    settings = SyncTrainSettings(
        batch_size=batch_size, lr=lr, max_steps=max_steps, max_minutes=max_minutes, seed=seed
    )
    report = train_syncnet(
        data,
        out,
        settings,
        device=device,
        train_split=train_split,
        test_split=test_split or None,
        init=resolve_syncnet(init) if init else None,
    )
    click.echo(json.dumps({k: v for k, v in report.items() if k != "offset_detection"}, indent=1))


@train.command("landmarks")
@trainer_options(CHECKPOINT_OUT, 32, "Frames per step.")
def train_landmarks_cmd(
    data: Path,
    out: Path,
    max_minutes: float | None,
    max_steps: int,
    batch_size: int,
    device: str,
    train_split: str,
    test_split: str,
    seed: int,
) -> None:
    """Train the mouth-landmark regressor behind the generator's L_lmk (labels: dlib on crops)."""
    from lipdub.train.landmarks import train_landmarks

    if out.suffix != ".safetensors":
        raise click.BadParameter("must end in .safetensors", param_hint="--out")
    report = train_landmarks(
        data,
        out,
        max_minutes=max_minutes,
        max_steps=max_steps,
        batch_size=batch_size,
        device=device,
        train_split=train_split,
        test_split=test_split or None,
        seed=seed,
    )
    click.echo(json.dumps(report, indent=1))


@train.command("driver")
@trainer_options(CHECKPOINT_OUT, 16, "Frame windows per step.")
@click.option("--lr", type=float, default=5e-4, show_default=True, help="Adam learning rate.")
@click.option(
    "--components", type=int, default=8, show_default=True, help="Mouth-shape PCA size K."
)
@validation_options(100, "the checkpoint with the best validation mouth-opening correlation")
@click.option(
    "--log",
    "log_path",
    type=click.Path(path_type=Path),
    help="JSON-lines log of the validations [default: beside --out, .log.jsonl].",
)
def train_driver_cmd(
    data: Path,
    out: Path,
    max_minutes: float | None,
    max_steps: int,
    batch_size: int,
    lr: float,
    components: int,
    val_speakers: str,
    val_every: int,
    device: str,
    train_split: str,
    test_split: str,
    log_path: Path | None,
    seed: int,
) -> None:
    """Train the exemplar path's audio → mouth-shape driver; report held-out correlations."""
    from lipdub.model.driver import DriverConfig
    from lipdub.train.driver import DriverTrainSettings, train_driver

    if out.suffix != ".safetensors":
        raise click.BadParameter("must end in .safetensors", param_hint="--out")
    settings = DriverTrainSettings(
        batch_size=batch_size,
        lr=lr,
        max_steps=max_steps,
        max_minutes=max_minutes,
        val_every=val_every,
        seed=seed,
    )
    report = train_driver(
        data,
        out,
        settings,
        DriverConfig(components=components),
        val_speakers=speakers(val_speakers),
        device=device,
        train_split=train_split,
        test_split=test_split or None,
        log_path=log_path or out.with_suffix(".log.jsonl"),
    )
    click.echo(json.dumps(report, indent=1))


@train.command("generator")
@click.option("--data", type=click.Path(path_type=Path), required=True, help="Prepared dataset.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--config", type=click.Choice(["full", "lite"]), default="full", show_default=True)
@click.option("--max-minutes", type=float, help="Wall-time budget (this run).")
@click.option("--max-steps", type=int, default=1_000_000, show_default=True, help="Step budget.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out.")
@click.option(
    "--init",
    "init",
    help="Start G from this generator checkpoint (name or .safetensors); D starts fresh.",
)
@DEVICE
@click.option(
    "--syncnet", help="Frozen SyncNet for L_sync (name or .safetensors); none = no L_sync."
)
@click.option(
    "--vgg19",
    type=click.Path(exists=True, path_type=Path),
    help="VGG19 weights (safetensors, torchvision key names) for the paper's perceptual "
    "loss; without it discriminator feature matching stands in.",
)
@click.option(
    "--landmarks",
    help="Mouth-landmark regressor for the L_lmk term (manifest name, e.g. "
    "mouth-landmarks-v1, or a `lipdub train landmarks` .safetensors).",
)
@click.option("--lambda-lmk", type=float, default=0.5, show_default=True, help="Weight of L_lmk.")
@click.option(
    "--lambda-gap",
    type=float,
    default=0.0,
    show_default=True,
    help="Weight of L_gap, the regressor's inner-lip opening error (needs --landmarks).",
)
@click.option(
    "--lambda-sync",
    type=float,
    default=1.0,
    show_default=True,
    help="Weight of L_sync (the paper's 1; lower when the SyncNet is weak).",
)
@click.option(
    "--ema-half-life",
    type=float,
    default=0.0,
    show_default=True,
    help="Release a moving average of G's weights with this half-life in steps (0 = off).",
)
@click.option(
    "--near-reference",
    type=float,
    default=0.25,
    show_default=True,
    help="Share of training references taken 1-2 frames beside the window (they carry detail, "
    "but also the target's mouth shape); 0.35 are closed mouths far from it, the rest random "
    "far frames.",
)
@validation_options(
    500,
    "the checkpoint with the best margin over the zeroed-audio and copy-reference LMD "
    "(in OUT/best/)",
)
@click.option(
    "--reference-gate",
    is_flag=True,
    help="Add learned gates that let the reference's mouth detail past Eq. 1's masking of the "
    "high-resolution layers (zero at start: the paper's model). Pass it again with --resume.",
)
@click.option(
    "--gate-lr-mult",
    type=float,
    default=1.0,
    show_default=True,
    help="Learning rate of the reference gates as a multiple of G's (they start at zero).",
)
@click.option("--batch-size", type=int, default=2, show_default=True, help="5-frame windows/step.")
@click.option("--split", default="train", show_default=True, help="Split to train on.")
@SEED
def train_generator_cmd(
    data: Path,
    out: Path,
    config: str,
    max_minutes: float | None,
    max_steps: int,
    resume: bool,
    init: str | None,
    device: str,
    syncnet: str | None,
    vgg19: Path | None,
    landmarks: str | None,
    lambda_lmk: float,
    lambda_gap: float,
    lambda_sync: float,
    ema_half_life: float,
    near_reference: float,
    val_speakers: str,
    val_every: int,
    reference_gate: bool,
    gate_lr_mult: float,
    batch_size: int,
    split: str,
    seed: int,
) -> None:
    """Train the generator: L_g = L_adv + 10·L_rec + λ_s·L_sync [+ λ_l·L_lmk + λ_g·L_gap].

    λ_s is 1, as in the paper, unless --lambda-sync says otherwise.
    """
    from dataclasses import replace

    from lipdub.model.config import get_config
    from lipdub.train.backbone import train_generator
    from lipdub.train.generator_trainer import GenTrainSettings

    settings = GenTrainSettings(
        batch_size=batch_size,
        max_steps=max_steps,
        max_minutes=max_minutes,
        seed=seed,
        split=split,
        lambda_lmk=lambda_lmk,
        lambda_gap=lambda_gap,
        lambda_sync=lambda_sync,
        val_speakers=speakers(val_speakers),
        val_every=val_every,
        near_reference=near_reference,
        ema_half_life=ema_half_life,
        gate_lr_mult=gate_lr_mult,
    )
    report = train_generator(
        data,
        out,
        replace(get_config(config), reference_gate=reference_gate),
        settings,
        device=device,
        syncnet=syncnet,
        vgg19=vgg19,
        resume=resume,
        init=init,
        landmarks=landmarks,
    )
    click.echo(json.dumps(report, indent=1))
