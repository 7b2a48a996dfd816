"""The contract every blender, generator and landmarker plugin keeps, as checks anyone can run.

A studio writing a blender, a generator or a landmarker calls these from its own tests with the
name its plugin registers (``check_blender(PluginManager(), "mine")``); lipdub's suite runs them
over its built-ins. The stage object is built through the plugin manager, exactly as a render
builds it, and fed synthetic inputs of the shapes and dtypes docs/plugins.md documents (the
protocols in :mod:`lipdub.render.protocols` and :mod:`lipdub.analysis.protocols` are the truth);
a landmarker gets a real face, scikit-image's public-domain astronaut portrait, since points on
noise prove nothing. A broken promise fails with a :class:`ContractError` (an
``AssertionError``, so pytest reports it as a failure) that names the plugin and the promise.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np
from skimage import data as skimage_data

from lipdub.analysis.records import JAW, LEFT_EYE, MOUTH, RIGHT_EYE
from lipdub.model.track_clip import TrackClip
from lipdub.plugin_manager import PluginManager
from lipdub.render.protocols import Blender, Generator, NativeGenerator, UnchangedPicture

#: Frame region a blender is given: not square, odd sizes, a view into a larger frame.
REGION_HW = (61, 84)
#: Crops a crop generator is given (a few frames: enough for temporal smoothing, cheap on CPU).
CLIP_FRAMES = 7
#: Frame rate and sample rate of the synthetic clip (the dub audio is 16 kHz mono).
CLIP_FPS = Fraction(25)
SAMPLE_RATE = 16000
#: The face box in scikit-image's astronaut portrait (512², upright, frontal): dlib HOG's box.
ASTRONAUT_FACE = np.array([179.0, 83.0, 267.0, 171.0])
#: A landmarker's points must lie within the face box grown by this many box sides each way.
BOX_SLACK = 0.5


class ContractError(AssertionError):
    """A plugin broke a promise of its stage's protocol."""


def _require(ok: bool, who: str, promise: str) -> None:
    if not ok:
        raise ContractError(f"{who}: {promise}")


def synthetic_region(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A blender's inputs: ``frame`` and ``face`` (H, W, 3) uint8, ``mask`` (H, W) float32.

    ``frame`` is a smooth gradient seen through a non-contiguous view (as the renderer passes a
    region of the full frame), ``face`` is textured noise (so a blender that ignores it shows),
    and ``mask`` has a border and a corner of exact zeros, a soft ramp, and a core of ones.
    """
    rng = np.random.default_rng(seed)
    h, w = REGION_HW
    y, x = np.mgrid[0 : h + 10, 0 : w + 10]
    big = np.stack([x * 2 % 256, y * 3 % 256, (x + y) % 256], -1).astype(np.uint8)
    frame = big[5 : 5 + h, 3 : 3 + w]  # A view: strided, not contiguous.
    face = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    r = np.hypot((np.mgrid[0:h, 0:w][0] - cy) / (h / 2), (np.mgrid[0:h, 0:w][1] - cx) / (w / 2))
    mask = np.clip((0.8 - r) / 0.3, 0.0, 1.0).astype(np.float32)  # 1 in the core, ramp, 0 out.
    mask[:4], mask[-4:], mask[:, :4], mask[:, -4:] = 0, 0, 0, 0
    mask[: h // 3, : w // 3] = 0  # A corner of zeros reaching in.
    return frame, face, mask


def check_blender(
    plugins: PluginManager, name: str, options: Mapping[str, Any] | None = None, seed: int = 0
) -> None:
    """Check the blender ``name`` (built with ``options``) against :class:`Blender`.

    Promises: it has ``blend``; ``blend(frame, face, mask)`` returns an (H, W, 3) uint8 array;
    pixels where the mask is 0 are exactly the frame's; it leaves its inputs as they were; an
    all-zero mask gives the frame back; and where the mask is 1 the result is nearer the face
    than the frame is (a blender that pastes nothing fails).

    Raises:
        ContractError: the first promise broken.
        PluginError: no such blender, or an option it does not declare.
    """
    who = f"blender {name!r}"
    blender = plugins.create("blender", name, options)
    _require(isinstance(blender, Blender), who, "has no blend(frame, face, mask) method")
    frame, face, mask = synthetic_region(seed)
    before = frame.copy(), face.copy(), mask.copy()
    out = np.asarray(blender.blend(frame, face, mask))
    _require(out.shape == frame.shape, who, f"returned shape {out.shape}, not {frame.shape}")
    _require(out.dtype == np.uint8, who, f"returned dtype {out.dtype}, not uint8")
    for given, kept in zip((frame, face, mask), before, strict=True):
        _require(np.array_equal(given, kept), who, "changed one of its input arrays")
    zero = mask == 0
    _require(np.array_equal(out[zero], frame[zero]), who, "changed pixels where the mask is 0")
    same = np.asarray(blender.blend(frame, face, np.zeros_like(mask)))
    _require(np.array_equal(same, frame), who, "changed the frame under an all-zero mask")
    core = mask == 1
    to_face = np.abs(out[core].astype(np.int32) - face[core]).mean()
    frame_to_face = np.abs(frame[core].astype(np.int32) - face[core]).mean()
    _require(to_face < frame_to_face, who, "did not move the pixels under mask 1 to the face")


def synthetic_clip(folder: Path, resolution: int, frames: int = CLIP_FRAMES) -> TrackClip:
    """A crop generator's input: memory-mapped (T, S, S, 3) uint8 crops and (T, S, S) float32
    masks in ``folder`` (a generator must read them in chunks), a second of tone-like dub."""
    s = resolution
    crops = np.lib.format.open_memmap(folder / "crops.npy", "w+", np.uint8, (frames, s, s, 3))
    masks = np.lib.format.open_memmap(folder / "masks.npy", "w+", np.float32, (frames, s, s))
    y, x = np.mgrid[0:s, 0:s]
    for t in range(frames):
        crops[t] = np.stack([(x + 3 * t) % 256, y % 256, np.full_like(x, 128)], -1)
        masks[t] = (y > s // 2).astype(np.float32)
    n = int(SAMPLE_RATE * frames / CLIP_FPS)
    audio = (0.1 * np.sin(2 * np.pi * 220 * np.arange(n) / SAMPLE_RATE)).astype(np.float32)
    return TrackClip(crops, masks, np.arange(frames), audio, CLIP_FPS, reference=0, actor="test")


def check_crop_generator(
    plugins: PluginManager, name: str, options: Mapping[str, Any] | None = None
) -> None:
    """Check the crop generator ``name`` against :class:`Generator`: an int ``resolution`` S,
    and for a (T, S, S, 3) uint8 clip, T crops of (S, S, 3) uint8 in order, with progress
    counting to T; one that declares it leaves the picture unchanged returns its input.

    Raises:
        ContractError: the first promise broken.
    """
    _check_crop(plugins.create("generator", name, options), f"generator {name!r}")


def _check_crop(gen: Any, who: str) -> None:
    _require(isinstance(gen, Generator), who, "is not a crop generator (resolution, generate)")
    s = gen.resolution
    _require(isinstance(s, int) and s > 0, who, f"resolution {s!r} is not a positive int")
    done: list[int] = []
    with TemporaryDirectory() as tmp:
        clip = synthetic_clip(Path(tmp), s)
        out = [np.asarray(c) for c in gen.generate(clip, done.append)]
        _require(len(out) == CLIP_FRAMES, who, f"gave {len(out)} crops for {CLIP_FRAMES}")
        for crop in out:
            _require(crop.shape == (s, s, 3), who, f"gave a crop of shape {crop.shape}")
            _require(crop.dtype == np.uint8, who, f"gave a crop of dtype {crop.dtype}")
        _require(sum(done) == CLIP_FRAMES, who, f"reported {sum(done)} of {CLIP_FRAMES} done")
        if isinstance(gen, UnchangedPicture):
            same = np.array_equal(np.stack(out), clip.crops)
            _require(same, who, "declares leaves_picture_unchanged but changed the crops")


def check_generator(
    plugins: PluginManager, name: str, options: Mapping[str, Any] | None = None
) -> str:
    """Check the generator ``name``, whichever kind it is; return what was checked.

    A crop generator runs :func:`check_crop_generator`. A native one (``exemplar``) needs real
    footage of a real face to run (its bank is the actor's own frames), so only its surface is
    checked here: ``thin`` and ``open_track``; lipdub's real-footage tests run it whole.

    Raises:
        ContractError: the generator is neither kind, or broke a promise.
    """
    gen = plugins.create("generator", name, options)
    if isinstance(gen, NativeGenerator):
        return "native: thin and open_track present (a full run needs real footage)"
    _check_crop(gen, f"generator {name!r}")
    return "crop: (T, S, S, 3) uint8 in, the same out"


def check_landmarker(
    pm: PluginManager, name: str, options: Mapping[str, Any] | None = None
) -> np.ndarray:
    """Check the landmarker ``name`` against :class:`lipdub.analysis.protocols.Landmarker` on a
    real upright face; return its (68, 2) points.

    Promises: a ``name``; ``(N, 68, 2) float32`` for N boxes (N = 0 included), finite, inside the
    face box grown by :data:`BOX_SLACK`; the iBUG 300-W order on an upright face (the subject's
    right eye on the image's left, the eyes above the mouth, the mouth above the chin, the mouth
    corners 48 and 54 and the inner corners 60 and 64 left to right); the same box twice gives
    the same points.
    """
    who = f"landmarker {name!r}"
    lm = pm.create("landmarker", name, options)
    _require(isinstance(getattr(lm, "name", None), str) and bool(lm.name), who, "has a str name")
    image = skimage_data.astronaut()
    none = np.asarray(lm.landmarks(image, []))
    _require(none.shape == (0, 68, 2), who, f"no boxes give (0, 68, 2), got {none.shape}")
    two = np.asarray(lm.landmarks(image, [ASTRONAUT_FACE, ASTRONAUT_FACE.copy()]))
    _require(two.shape == (2, 68, 2), who, f"two boxes give (2, 68, 2), got {two.shape}")
    _require(two.dtype == np.float32, who, f"float32 points, got {two.dtype}")
    _require(bool(np.isfinite(two).all()), who, "finite points")
    _require(np.array_equal(two[0], two[1]), who, "the same box twice gives the same points")
    pts = two[0]
    x0, y0, x1, y1 = ASTRONAUT_FACE
    side = x1 - x0
    lo, hi = np.array([x0, y0]) - BOX_SLACK * side, np.array([x1, y1]) + BOX_SLACK * side
    _require(bool(((pts >= lo) & (pts <= hi)).all()), who, "points lie on the face's box")
    right, left = pts[LEFT_EYE].mean(axis=0), pts[RIGHT_EYE].mean(axis=0)
    mouth, chin = pts[MOUTH].mean(axis=0), pts[JAW][8]
    _require(right[0] < left[0], who, "the subject's right eye (36..41) is on the image's left")
    _require(max(right[1], left[1]) < mouth[1] < chin[1], who, "eyes above the mouth above chin")
    _require(pts[48, 0] < pts[54, 0] and pts[60, 0] < pts[64, 0], who, "mouth corners in order")
    return pts
