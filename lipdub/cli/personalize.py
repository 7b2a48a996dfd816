"""``lipdub personalize --actor NAME``: fine-tune the generator on one actor's own footage."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from lipdub.cli.common import (
    cli_settings,
    cut_detector,
    json_option,
    project_option,
    resolve_project,
    wants_json,
)
from lipdub.cluster import ray_session, task_gpus
from lipdub.config.plan import load_plan
from lipdub.config.project import PERSONAL_FILE, ActorConfig, ProjectConfig
from lipdub.config.settings import Settings
from lipdub.config.shots import Shot
from lipdub.errors import ConfigError
from lipdub.exemplar.actor_bank import build_actor_bank
from lipdub.exemplar.bank import BankPart
from lipdub.plugin_manager import PluginManager
from lipdub.train.protocols import PersonalizeProgress, ProgressFn

log = logging.getLogger(__name__)

JSON_EVERY = 10  # --json: a progress line every this many steps (and at every measurement).


class ProgressView:
    """A rich bar with the last loss and held-out metric, or JSON lines."""

    def __init__(self, actor: str, as_json: bool) -> None:
        self.actor, self.as_json = actor, as_json
        self.held = "held-out: -"
        self._bar: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> ProgressView:
        if not self.as_json:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[info]}"),
                console=Console(stderr=True),
            )
            self._bar.start()
            self._task = self._bar.add_task(f"personalize {self.actor}", total=None, info="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, p: PersonalizeProgress) -> None:
        """Show one progress report."""
        if p.held_out:
            self.held = f"held-out L1 {p.held_out['L1_mouth']:.4f} PSNR {p.held_out['PSNR']:.2f}"
        if self.as_json:
            if p.phase != "train" or p.held_out or p.step % JSON_EVERY == 0:
                click.echo(json.dumps({"event": "progress", "actor": self.actor, **p.to_dict()}))
                sys.stdout.flush()
            return
        assert self._bar is not None
        loss = f"L_p {p.losses['L_p']:.4f} L1 {p.losses['L1']:.4f}  " if p.losses else ""
        desc = f"personalize {self.actor}" + ("" if p.phase == "train" else f" ({p.phase})")
        total = p.total if p.phase == "train" else None
        self._bar.update(
            self._task, completed=p.step, total=total, description=desc, info=loss + self.held
        )


def _bank_progress(actor: str, as_json: bool) -> Callable[[int, int], None]:
    """Report bank building: a log line a clip (JSON lines with --json)."""

    def report(done: int, total: int) -> None:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "event": "progress",
                        "actor": actor,
                        "phase": "bank",
                        "step": done,
                        "total": total,
                    }
                )
            )
        elif done < total:
            click.echo(f"bank: clip {done + 1} of {total}", err=True)

    return report


#: In the actor's folder: the shots file the bank was last built with (``--shots``), so that a
#: later ``personalize`` without it rebuilds the same bank instead of a smaller one.
BANK_SHOTS = "bank-shots.txt"


def _bank_shots(given: Path | None, remembered: Path, as_json: bool) -> Path | None:
    """The shots file to bank: the one given, else the one the bank was last built with.

    Raises:
        ConfigError: the remembered shots file is gone (say how to go on).
    """
    if given is not None or not remembered.is_file():
        return given
    path = Path(remembered.read_text().strip())
    if not path.is_file():
        raise ConfigError(
            f"{remembered}: the actor's bank was built with --shots {path}, which is gone; "
            f"give --shots FILE, or delete {remembered.name} to bank the footage only"
        )
    message = f"bank: also the actor's shots in {path}, as the bank was built (--shots)"
    click.echo(json.dumps({"event": "note", "message": message}) if as_json else message)
    return path


def _bank(
    actor: ActorConfig,
    project: ProjectConfig,
    shots: tuple[Shot, ...],
    as_json: bool,
    required: bool,
    settings: Settings,
) -> None:
    """Build the actor's exemplar bank and say what it holds. Without ``required`` a bank that
    cannot be built (no usable face in the footage) is a warning: ΔW/ΔP may still be trained."""
    try:
        report = _bank_progress(actor.name, as_json)
        plugins = PluginManager(project.root)
        stages = {n: plugins.build(n, settings) for n in ("faces", "landmarker", "tracker")}
        parts = build_actor_bank(
            actor,
            project.root,
            project.actors,
            shots,
            report,
            analysis_with=(settings.analysis_settings(), stages),
        )
    except ConfigError as exc:
        if required:
            raise
        _say(
            as_json,
            "warning",
            actor.name,
            f"no exemplar bank: {exc}; renders use the shot's own frames",
        )
        return
    frames = sum(int(BankPart.load(p).usable.sum()) for p in parts)
    if as_json:
        record = {
            "event": "bank",
            "actor": actor.name,
            "parts": len(parts),
            "usable_frames": frames,
        }
        click.echo(json.dumps(record))
    else:
        click.echo(f"bank: {len(parts)} part(s), {frames} usable frames in {parts[0].parent}")


def _say(as_json: bool, event: str, actor: str, message: str) -> None:
    """One note or warning: a JSON event on stdout, or a line on stderr."""
    if as_json:
        click.echo(json.dumps({"event": event, "actor": actor, "message": message}))
    else:
        click.echo(f"{event}: {message}", err=True)


def run_job(
    choice: str,
    stage_options: Mapping[str, Any],
    actor: ActorConfig,
    project_root: Path,
    run_options: Mapping[str, Any],
    progress: ProgressFn | None = None,
) -> str:
    """Build the personalizer ``choice`` and run it (in this process or on a Ray worker)."""
    root = Path(project_root)
    plugins = PluginManager(root if (root / "lipdub.toml").is_file() else None)
    personalizer = plugins.create("personalizer", choice, dict(stage_options))
    return str(personalizer.personalize(actor, root, run_options, progress))


def run_on_ray(num_gpus: float | None, address: str | None, **job: Any) -> str:
    """:func:`run_job` as one Ray task with ``num_gpus`` (None: 1 if the cluster has a GPU)."""
    with ray_session(address, "--executor ray") as ray:
        gpus = task_gpus(ray, num_gpus, "--num-gpus")
        if gpus and dict(job["stage_options"]).get("device", "auto") == "cpu":
            log.warning("a GPU task with device 'cpu': the GPU will sit idle")
        task = ray.remote(num_gpus=gpus, num_cpus=1)(run_job)
        log.info("personalization sent to Ray (num_gpus %g)", gpus)
        return ray.get(task.remote(**job))


@click.command()
@click.option("--actor", required=True, help="Actor name from lipdub.toml [actors.NAME].")
@click.option("--steps", type=int, help="Optimisation steps budget (total over resumes).")
@click.option("--minutes", type=float, help="Wall-time budget in minutes (this run).")
@click.option("--device", help="auto, cpu, cuda or cuda:N.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", help="Where.")
@click.option("--num-gpus", type=float, help="GPUs of the Ray task (default: 1 if there is one).")
@click.option("--resume/--restart", default=True, help="Continue a previous run if present.")
@click.option("--weights", help="General checkpoint: manifest name or .safetensors path.")
@click.option(
    "--general-data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Prepared general dataset mixed 1:1 (default: sync regulariser on other audio).",
)
@click.option("--tune", type=click.Choice(["high-res", "synthesis", "all"]), help="ΔP scope.")
@click.option("--rank", type=int, help="Low-rank ΔP of this rank (0 = dense).")
@click.option("--syncnet", help="Frozen SyncNet (name or path; 'none' = off).")
@click.option("--discriminator", help="General run's discriminator (name or path; 'none' = off).")
@click.option(
    "--shots",
    "shots_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also bank the actor's tracks in the shots of this file that list them.",
)
@click.option(
    "--bank-only", is_flag=True, help="Only (re)build the actor's exemplar bank; no fine-tuning."
)
@click.option(
    "--fine-tune/--no-fine-tune",
    default=None,
    help="Fine-tune the stylesync generator for the actor (research-only weights). Default: "
    "only where the project renders with stylesync (generator or fallback).",
)
@click.option(
    "--keep-worse",
    is_flag=True,
    help="Adopt the result even when it does not beat the general model on held-out frames.",
)
@json_option
@project_option
def personalize(
    actor: str,
    steps: int | None,
    minutes: float | None,
    device: str | None,
    executor: str,
    num_gpus: float | None,
    resume: bool,
    weights: str | None,
    general_data: Path | None,
    tune: str | None,
    rank: int | None,
    syncnet: str | None,
    discriminator: str | None,
    shots_file: Path | None,
    bank_only: bool,
    fine_tune: bool | None,
    keep_worse: bool,
    as_json: bool,
    project_dir: Path | None,
) -> None:
    """Prepare one actor from their own footage: the exemplar bank, and where asked, ΔW / ΔP.

    Builds the actor's exemplar bank (actors/NAME/bank/: the usable frames of their footage,
    and of their shots in --shots), which the default `exemplar` generator draws on. Where the
    project renders with `stylesync` (its generator, or `fallback = "stylesync"`), or with
    --fine-tune, it then fine-tunes that generator on the footage (StyleSync §3.3) and writes
    actors/NAME/personal.safetensors (+ .json) and actors/NAME/CARD.md; later renders of that
    actor's shots use it (unless --no-personal). A stopped run continues where it was.
    """
    from lipdub.config.settings import resolve

    project = resolve_project(project_dir)
    if project.manifest is None:
        raise ConfigError("no lipdub.toml here or above; actors are defined in a project")
    actor_cfg = project.actor(actor, "--actor")
    settings = resolve(project.layer, cli_settings(device=device, weights=weights))
    # The shared settings it takes (weights, model, device) and its block, then the options
    # given here: the same route a render's stages take (PluginManager.options_for).
    stage_options = {
        **PluginManager(project.root).options_for("personalizer", settings),
        **cli_settings(
            general_data=str(general_data) if general_data else None,
            tune=tune,
            rank=rank,
            syncnet=syncnet,
            discriminator=discriminator,
        ),
    }
    run_options = cli_settings(
        steps=steps, minutes=minutes, resume=resume, keep_worse=keep_worse or None
    )
    job: dict[str, Any] = {
        "choice": settings.stage("personalizer"),
        "stage_options": stage_options,
        "actor": actor_cfg,
        "project_root": project.root,
        "run_options": run_options,
    }
    as_json = wants_json(as_json)
    remembered = project.root / actor_cfg.personal_dir / BANK_SHOTS
    shots_file = _bank_shots(shots_file, remembered, as_json)
    shots: tuple[Shot, ...] = ()
    if shots_file is not None:
        plugins = PluginManager(project.root)
        shots = load_plan(shots_file, project, {}, cut_detector(plugins, project, {})).shots
    _bank(actor_cfg, project, shots, as_json, required=bank_only, settings=settings)
    if shots_file is not None:  # The next run without --shots banks the same shots.
        remembered.parent.mkdir(parents=True, exist_ok=True)
        remembered.write_text(f"{shots_file.resolve()}\n")
    if fine_tune is None:  # Only a render that uses stylesync gains from its fine-tuning.
        fine_tune = "stylesync" in (settings.stage("generator"), settings.fallback)
    if bank_only or not fine_tune:
        if not bank_only:
            _say(
                as_json,
                "note",
                actor,
                f"actor {actor}: bank built; no fine-tuning, since this project renders with "
                f"{settings.stage('generator')} and fallback {settings.fallback!r} "
                "(--fine-tune trains the research-only stylesync generator for this actor)",
            )
        return
    _say(
        as_json,
        "warning",
        actor,
        f"actor {actor}: fine-tuning the stylesync generator, whose bundled weights and SyncNet "
        "were trained on research-only clips: not for commercial work (weights/MODEL_CARD.md)",
    )
    if executor == "ray":
        path = run_on_ray(num_gpus, None, **job)
    else:
        with ProgressView(actor, as_json) as view:
            path = run_job(**job, progress=view)
    adopted = Path(path).name == Path(PERSONAL_FILE).name
    card = Path(path).parent / ("CARD.md" if adopted else "CARD.rejected.md")
    if not adopted:
        kept = project.root / PERSONAL_FILE.format(name=actor)
        now = f"renders keep using {kept}" if kept.is_file() else "renders use the general model"
        message = (
            f"actor {actor}: the personalization does not beat the general model on its "
            f"held-out frames (see {card}); kept aside as {path}, not adopted: {now}"
        )
    if as_json:
        if not adopted:
            click.echo(json.dumps({"event": "warning", "actor": actor, "message": message}))
        done = {"event": "finished", "actor": actor, "file": path, "card": str(card)}
        click.echo(json.dumps({**done, "adopted": adopted}))
    else:
        click.echo(f"wrote {path}\n{card.read_text() if card.is_file() else ''}")
        if not adopted:
            click.echo(f"warning: {message}", err=True)
