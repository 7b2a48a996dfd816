"""The self-contained demo project: real talking footage shipped in the package, dubs made here.

The footage is three short takes of three speakers from the GRID audiovisual sentence corpus
(Cooke, Barker, Cunningham & Shao, 2006; CC BY 4.0; ``lipdub/resources/demo/NOTICE.md`` says
where each came from and what was changed): frontal, evenly lit faces saying six-word GRID
commands, so the mouth goes through closures, rounding and openings the exemplar path can reuse.
Each take is one shot, dubbed into English and German lines spoken by eSpeak NG and chosen for
their bilabials (p/b/m), rounded vowels (o/u) and labiodentals (f/v) — the shapes a viewer checks
first. Nothing is downloaded: the clips are package data, the speech is synthesised offline.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lipdub.media.atomic import atomic_output
from lipdub.media.audio import save_wav
from lipdub.media.read import probe
from lipdub.speech import synthesize

#: Where the demo clips live inside the installed package (pyproject's package data lists it).
DEMO_MEDIA = ("resources", "demo")


@dataclass(frozen=True)
class DemoShot:
    """One take of the demo: a shipped clip and the lines it is dubbed with."""

    shot_id: str  # Shot id in shots.yaml; outputs are renders/<shot_id>_<dub>.mov.
    clip: str  # File name under lipdub/resources/demo/.
    said: str  # What the speaker says in the clip (the GRID transcript), for the record.
    lines: tuple[tuple[str, str, str], ...]  # (dub name, eSpeak NG voice, text) per dub.


DEMO_SHOTS = (
    DemoShot(
        "sh010",
        "grid_bbaf2n.mp4",
        "bin blue at f two now",
        (
            ("en", "en", "Bob moved five blue boats past the pier."),
            ("de", "de", "Papa baut fünf blaue Boote am Meer."),
        ),
    ),
    DemoShot(
        "sh020",
        "grid_lrwp9a.mp4",
        "lay red with p nine again",
        (
            ("en", "en", "My mother found a few old maps."),
            ("de", "de", "Mama malt vier bunte Vögel."),
        ),
    ),
    DemoShot(
        "sh030",
        "grid_swiz3n.mp4",
        "set white in z three now",
        (
            ("en", "en", "Move over, Paula, we must be off."),
            ("de", "de", "Wir müssen um vier bei Paul sein."),
        ),
    ),
)

MANIFEST = """\
# lipdub demo project (made by `lipdub demo`): GRID corpus footage (CC BY 4.0, see
# footage/NOTICE.md), synthetic speech. Built-in defaults otherwise.
[project]
name = "demo"
preset = "draft"
device = "auto"
{stages}
[settings]
audio_fit = "pad-trim"
"""


def demo_clip(name: str) -> Path:
    """Path of a shipped demo file (a clip or the NOTICE) inside the installed package."""
    path = Path(str(resources.files("lipdub").joinpath(*DEMO_MEDIA, name)))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: demo media missing from the lipdub package")
    return path


def dub_audio_path(shot: DemoShot, dub: str) -> str:
    """The dub's WAV, relative to the project folder; its script sits beside it as ``.txt``."""
    return f"audio/{shot.shot_id}_{dub}.wav"


def shots_yaml(frames: dict[str, int]) -> str:
    """shots.yaml for the demo: one shot per take, the whole clip, one output per dub."""
    out = ["# Three takes, each dubbed into two languages: one output per dub.", "shots:"]
    for shot in DEMO_SHOTS:
        out += [
            f"  - id: {shot.shot_id}",
            f"    source: footage/{shot.clip}  # says: {shot.said}",
            "    in: 0",
            f"    out: {frames[shot.shot_id]}",
            "    dubs:",
        ]
        for dub, _voice, _text in shot.lines:
            out += [f"      - name: {dub}", f"        audio: {dub_audio_path(shot, dub)}"]
    return "\n".join(out) + "\n"


def build_demo(
    folder: Path,
    generator: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write the demo project into ``folder``: footage, dubs with their scripts, lipdub.toml and
    shots.yaml.

    Arguments:
        folder: the project folder (created; existing footage and dubs are written again).
        generator: a generator stage to name in lipdub.toml; None keeps the built-in default.
        progress: called with a line per step, so a new user sees what is happening.

    Returns:
        ``folder``.
    """
    say = progress or (lambda _line: None)
    for sub in ("footage", "audio", "actors", "renders", ".lipdub/cache"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(demo_clip("NOTICE.md"), folder / "footage" / "NOTICE.md")
    frames: dict[str, int] = {}
    for shot in DEMO_SHOTS:
        footage = folder / "footage" / shot.clip
        with atomic_output(footage) as tmp:
            shutil.copyfile(demo_clip(shot.clip), tmp)
        frames[shot.shot_id] = probe(footage).frame_count
        say(f"{shot.shot_id}: footage/{shot.clip} ({frames[shot.shot_id]} frames)")
        for dub, voice, text in shot.lines:
            wav = folder / dub_audio_path(shot, dub)
            save_wav(synthesize(text, voice=voice), wav)
            # The dub's script, for aligners that read a NAME.txt beside NAME.wav.
            wav.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
            say(f"{shot.shot_id}: {dub} dub spoken by eSpeak NG: {text!r}")
    stages = f'\n[stages]\ngenerator = "{generator}"\n' if generator else ""
    (folder / "lipdub.toml").write_text(MANIFEST.format(stages=stages), encoding="utf-8")
    (folder / "shots.yaml").write_text(shots_yaml(frames), encoding="utf-8")
    return folder
