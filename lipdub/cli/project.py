"""``lipdub project init``: start a project folder."""

from __future__ import annotations

from pathlib import Path

import click

from lipdub.config.project import MANIFEST
from lipdub.errors import ConfigError

FOLDERS = ("footage", "audio", "actors", "renders", ".lipdub/cache")

TEMPLATE_TOML = """\
# lipdub project manifest. Paths are relative to this file's folder.
[project]
name = "{name}"
preset = "broadcast"    # draft | broadcast | feature  (see presets/ in lipdub)
device = "auto"         # auto | cpu | cuda | cuda:N
# weights = "default"   # a name from lipdub's weights/manifest.toml, or a .safetensors path

[stages]                # which plugin serves each stage: `lipdub plugins list`
# faces = "dlib-hog"
# blender = "feather"

# Each stage's own options, in a table named after the stage (see lipdub's docs/plugins.md);
# shots.yaml sets them as `stage_options: {{blender: {{...}}}}` in `defaults:` or a shot's settings.
# [stage_options.blender]
# color_match = true
# [stage_options.generator]   # the exemplar generator: selection and fallback knobs
# holdout = 0

[settings]              # any render setting; shots.yaml and the command line override these
audio_fit = "pad-trim"  # a dub longer/shorter than its shot: pad-trim (silence / cut, each
                        # reported), pad, trim, or error (refuse); as `render --audio-fit`
# fallback = "source"   # a track whose exemplar bank is too thin keeps the source's frames
                        # (reported); "stylesync": painted by lite-v4 (research-only weights)
# qc_syncnet = false    # true: QC also measures LSE-C/LSE-D with the research-only SyncNet

# One table per actor: their own footage (with their own voice) and optional face stills.
# [actors.anna]
# footage = ["footage/anna_interview.mov"]
# references = ["actors/anna/face.jpg"]
"""

TEMPLATE_SHOTS = """\
# Shots to dub. in/out: frame numbers (0 = first frame) or SMPTE timecode
# ("01:00:10:00", drop-frame "01:00:10;00"); out is exclusive.
defaults: {}
shots:
  - id: sh010
    source: footage/sh010.mov
    in: 0
    out: 120
    # actors: [anna]          # whose faces to dub (default: every face)
    dubs:
      - name: de
        audio: audio/sh010_de.wav
        offset: 0.0           # seconds; positive = the dub starts later
        gain_db: 0.0
        # output: renders/sh010_de.mov
"""


@click.group()
def project() -> None:
    """Create and inspect lipdub projects."""


@project.command("init")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--name", help="Project name (default: the folder's name).")
@click.option("--force", is_flag=True, help="Overwrite lipdub.toml and shots.yaml if they exist.")
def init(folder: Path, name: str | None, force: bool) -> None:
    """Create lipdub.toml, an example shots.yaml and the project folders in FOLDER."""
    folder = folder.resolve()
    files = {
        folder / MANIFEST: TEMPLATE_TOML.format(name=name or folder.name),
        folder / "shots.yaml": TEMPLATE_SHOTS,
    }
    existing = [p for p in files if p.exists()]
    if existing and not force:
        raise ConfigError(
            f"{', '.join(str(p) for p in existing)} already exist(s); nothing was changed "
            f"(use --force to overwrite)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    for sub in FOLDERS:
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        click.echo(f"wrote {path}")
    click.echo(
        f"project ready in {folder}; put footage in footage/, dubs in audio/, then edit "
        f"shots.yaml and run `lipdub render shots.yaml`"
    )
