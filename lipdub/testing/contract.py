"""The contract every blender and generator plugin keeps, as checks anyone can run on one.

A studio writing a blender or a generator calls these from its own tests with the name its
plugin registers (``check_blender(PluginManager(), "mine")``); lipdub's suite runs them over its
built-ins. The stage object is built through the plugin manager, exactly as a render builds it, and
fed synthetic inputs of the shapes and dtypes docs/plugins.md documents (the protocols in
:mod:`lipdub.render.protocols` are the truth). A broken promise fails with a
:class:`ContractError` (an ``AssertionError``, so pytest reports it as a failure) that names the
plugin and the promise.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np

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
