"""The self-contained demo project: footage and dubs made here, from packages, never downloaded.

The picture is scikit-image's NASA astronaut portrait (public domain) given a gentle head motion,
framed as a 512×320 medium close-up (the photo's lower part, the suit's patches, looks enough like
faces to the detector to raise warnings about the demo's own footage); the dubs are English and
German sentences spoken by eSpeak NG. ``lipdub demo`` builds it and renders it with the built-in
defaults.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from lipdub.media.atomic import atomic_output
from lipdub.media.audio import save_wav
from lipdub.media.write import VideoWriter, codec_for
from lipdub.speech import synthesize

DEMO_FPS = Fraction(25)
DEMO_WIDTH = 512  # The astronaut photo is 512×512 ...
DEMO_HEIGHT = 320  # ... of which the top 320 rows are the shot: head and shoulders.
DEMO_LINES = {
    "en": (
        "en",
        "Hello from the launch pad. Today we dub this shot into another language, "
        "frame by frame, without touching anything but the mouth.",
    ),
    "de": (
        "de",
        "Hallo von der Startrampe. Heute synchronisieren wir diese Einstellung in eine "
        "andere Sprache, Bild für Bild.",
    ),
}

MANIFEST = """\
# lipdub demo project (made by `lipdub demo`): public-domain picture, synthetic speech.
[project]
name = "demo"
preset = "draft"
device = "auto"

[stages]
generator = "{generator}"

[settings]
audio_fit = "pad-trim"
"""

SHOTS = """\
# One shot, dubbed into two languages: one output per dub.
shots:
  - id: astronaut
    source: footage/astronaut.mov
    in: 0
    out: {frames}
    dubs:
      - name: en
        audio: audio/astronaut_en.wav
      - name: de
        audio: audio/astronaut_de.wav
"""


def head_motion_frames(
    image: np.ndarray, count: int, fps: Fraction, height: int | None = None
) -> np.ndarray:
    """``count`` frames of ``image`` with a slow, small sway (rotation, shift, scale), each cut
    to its top ``height`` rows (all of it when None) after the motion."""
    h, w = image.shape[:2]
    out = np.empty((count, height or h, w, 3), np.uint8)
    for i in range(count):
        t = float(i / fps)
        angle = 2.0 * math.sin(2 * math.pi * t / 4.0)  # Degrees, 4 s period.
        scale = 1.0 + 0.015 * math.sin(2 * math.pi * t / 5.0)
        dx = 5.0 * math.sin(2 * math.pi * t / 3.0)
        dy = 3.0 * math.sin(2 * math.pi * t / 6.0)
        m = cv2.getRotationMatrix2D((w / 2, h * 0.4), angle, scale)
        m[:, 2] += np.array((dx, dy))
        moved = cv2.warpAffine(
            image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        out[i] = moved[: height or h]
    return out


def build_demo(folder: Path, generator: str = "passthrough") -> Path:
    """Write the demo project into ``folder`` (footage, dubs, lipdub.toml, shots.yaml)."""
    from skimage import data

    for sub in ("footage", "audio", "actors", "renders", ".lipdub/cache"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    dubs = {lang: synthesize(text, voice=voice) for lang, (voice, text) in DEMO_LINES.items()}
    for lang, audio in dubs.items():
        save_wav(audio, folder / "audio" / f"astronaut_{lang}.wav")
    longest = max(a.duration_s for a in dubs.values())
    frames = math.ceil((longest + 0.5) * DEMO_FPS)
    footage = folder / "footage" / "astronaut.mov"
    if not footage.exists():
        picture = data.astronaut()
        with (
            atomic_output(footage) as tmp,
            VideoWriter(
                tmp, DEMO_WIDTH, DEMO_HEIGHT, DEMO_FPS, codec_for("h264", tmp), "01:00:00:00"
            ) as writer,
        ):
            for frame in head_motion_frames(picture, frames, DEMO_FPS, DEMO_HEIGHT):
                writer.write(frame)
    (folder / "lipdub.toml").write_text(MANIFEST.format(generator=generator), encoding="utf-8")
    (folder / "shots.yaml").write_text(SHOTS.format(frames=frames), encoding="utf-8")
    return folder
