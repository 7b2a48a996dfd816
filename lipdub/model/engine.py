"""Inference engine: runs the StyleSync generator over a whole face track, streaming.

Per track: pick the reference frame (unless the clip names one), then walk the frames in order in
batches. Each batch is encoded (E_face, E_a, mapping, ΔW → W⁺ and the encoder maps); MaLS needs
r = ``mals.radius`` frames of context on each side, so a frame is synthesised once the W⁺ of the
r frames after it exist. Smoothing runs on the window [first pending − r, last encoded), which is
exactly what one MaLS pass over the whole track computes for the pending frames (outputs within
r of a window edge are never used unless the edge is the track's own end). Memory is bounded by
about ``batch_size + r`` frames of encoder maps, whatever the track length.

On CUDA the model runs channels-last under bf16 autocast (MaLS and the demodulation
coefficients stay fp32), optionally through ``torch.compile``. cuDNN autotuning is switched off
so that the same inputs, weights and device give the same output. On the CPU the model runs
with a fixed number of threads (:data:`CPU_THREADS`): torch splits its reductions by the thread
count, and one thread gave other pixels (±1/255) than two or four on the same machine.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from lipdub.errors import DeviceError, MediaError
from lipdub.model.generator import StyleSyncGenerator
from lipdub.model.layers import assert_shape
from lipdub.model.mel import MelFrontend
from lipdub.model.personal import apply_personal
from lipdub.model.track_clip import TrackClip

log = logging.getLogger(__name__)

REFERENCE_SAMPLES = 64  # Frames sampled (evenly) when choosing the reference.
#: Intra-op threads for the model on the CPU, whatever the machine or OMP_NUM_THREADS says, so
#: that a 1-CPU farm slot and a workstation write the same bytes (see the module docstring).
CPU_THREADS = 4
REFERENCE_SIZE = 32  # Side the crops are block-averaged to for that choice.


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Run torch's CPU kernels on ``count`` threads inside the block."""
    before = torch.get_num_threads()
    if before != count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if before != count:
            torch.set_num_threads(before)


def select_device(spec: str = "auto") -> torch.device:
    """Resolve ``"auto" | "cpu" | "cuda" | "cuda:N"`` to a device.

    Raises:
        DeviceError: CUDA was asked for but is absent, or the index does not exist.
    """
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device {spec!r} requested but CUDA is not available here")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {spec!r} requested but only {torch.cuda.device_count()} CUDA device(s)"
            )
        return dev
    raise DeviceError(f"unknown device {spec!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


def _block_mean(x: np.ndarray, size: int) -> np.ndarray:
    """(..., S, S) → (..., size, size) by averaging S/size × S/size blocks."""
    s = x.shape[-1]
    f = max(s // size, 1)
    x = x[..., : size * f, : size * f]
    return x.reshape(*x.shape[:-2], size, f, size, f).mean(axis=(-3, -1))


def choose_reference(crops: np.ndarray, masks: np.ndarray) -> int:
    """Pick a reference frame with a typical, closed-ish mouth.

    Criterion: among up to ``REFERENCE_SAMPLES`` evenly spaced frames, the one whose masked region
    (grey, block-averaged to 32×32) is closest in mask-weighted mean absolute difference to the
    per-pixel median of those frames. In speech the mouth is closed or nearly closed most of the
    time, so the median mouth is a neutral one, and the frame nearest to it is neither mid-word
    open nor motion-blurred. Only crops and masks are used (no landmarks); ties go to the
    earliest frame, so the choice is deterministic.

    Arguments:
        crops: (T, S, S, 3) uint8 RGB (may be memory-mapped: only the samples are read).
        masks: (T, S, S) float32 masks in [0, 1].

    Returns:
        Index into ``crops``.
    """
    t = crops.shape[0]
    idx = np.unique(np.linspace(0, t - 1, min(t, REFERENCE_SAMPLES)).round().astype(np.int64))
    grey = np.stack(
        [_block_mean(crops[i].astype(np.float32).mean(axis=-1), REFERENCE_SIZE) for i in idx]
    )
    weight = np.stack(
        [_block_mean(np.asarray(masks[i], np.float32), REFERENCE_SIZE) for i in idx]
    ).mean(axis=0)
    if weight.sum() <= 0:
        weight = np.ones_like(weight)
    median = np.median(grey, axis=0)
    score = (np.abs(grey - median) * weight).sum(axis=(1, 2)) / weight.sum()
    return int(idx[int(np.argmin(score))])


class StyleSyncEngine:
    """A :class:`lipdub.render.protocols.Generator` around a :class:`StyleSyncGenerator`."""

    def __init__(
        self,
        model: StyleSyncGenerator,  # Loaded generator (weights already verified).
        device: str = "auto",  # "auto" | "cpu" | "cuda" | "cuda:N".
        batch_size: int = 16,  # Frames per encoder / synthesis batch.
        compile: bool = False,  # Wrap encode / synthesize in torch.compile?
        precision: str = "auto",  # "auto" (bf16 on CUDA, fp32 on CPU) | "fp32" | "bf16".
        label: str = "",  # What the weights are, for logs (e.g. "random-init (untrained)").
        audio_scale: float = 1.0,  # s in w_0 + s·(w − w_0) (lipdub.model.generator).
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not audio_scale > 0:
            raise ValueError(f"audio_scale must be > 0, got {audio_scale}")
        self.audio_scale = float(audio_scale)
        self.device = select_device(device)
        self.batch_size = batch_size
        self.label = label
        self.resolution = model.resolution
        if precision == "auto":
            bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
            precision = "bf16" if bf16 else "fp32"
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}")
        self.precision = precision
        self.channels_last = self.device.type == "cuda"
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = False  # Autotuning may pick other kernels per run.
        model = model.eval().requires_grad_(False).to(self.device)
        if self.channels_last:
            # Documented (nn.Module.to(memory_format=...)), but absent from torch's overloads.
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.model = model
        self._general: dict[str, torch.Tensor] | None = None  # Weights before any actor file.
        self._personal: Path | None = None  # The actor file applied now, if any.
        self.mel = MelFrontend(model.cfg.mel)
        self._encode = torch.compile(model.encode) if compile else model.encode
        self._synthesize = torch.compile(model.synthesize) if compile else model.synthesize
        log.info(
            "stylesync engine on %s, %s, batch %d, audio scale %g, %s",
            self.device,
            precision,
            batch_size,
            self.audio_scale,
            label or "checkpoint",
        )

    def use_personal(self, path: Path | str | None) -> None:
        """Apply an actor's personalization file (ΔW MLP + ΔP), or go back to the general model.

        The general weights are kept once, so tracks of different actors in one shot each get
        their own file applied to the same base.
        """
        path = Path(path) if path is not None else None
        if path == self._personal:
            return
        if self._general is None:
            self._general = {k: v.clone() for k, v in self.model.state_dict().items()}
        self.model.load_state_dict(self._general)
        if path is not None:
            apply_personal(self.model, path)
            log.info("stylesync: applied personalization %s", path)
        self._personal = path

    def _threads(self) -> contextlib.AbstractContextManager:
        """On the CPU, the fixed thread count (:data:`CPU_THREADS`); elsewhere nothing."""
        if self.device.type == "cpu":
            return _torch_threads(CPU_THREADS)
        return contextlib.nullcontext()

    def _autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast where the precision asks for it; on the CPU, also the fixed thread
        count (:data:`CPU_THREADS`), restored afterwards for the rest of the process."""
        stack = contextlib.ExitStack()
        stack.enter_context(self._threads())
        if self.precision == "bf16":
            stack.enter_context(torch.autocast(self.device.type, dtype=torch.bfloat16))
        return stack

    def _images(self, crops: np.ndarray) -> torch.Tensor:
        """(B, S, S, 3) uint8 → (B, 3, S, S) float32 in [-1, 1] on the device."""
        x = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device)
        x = x.permute(0, 3, 1, 2).float() / 127.5 - 1.0
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _masks(self, masks: np.ndarray) -> torch.Tensor:
        m = torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32)).to(self.device)
        return m[:, None]

    def _check(self, clip: TrackClip) -> int:
        t, s = clip.crops.shape[0], self.resolution
        if clip.crops.shape != (t, s, s, 3) or clip.crops.dtype != np.uint8:
            raise MediaError(
                f"track crops must be ({t}, {s}, {s}, 3) uint8, got "
                f"{clip.crops.shape} {clip.crops.dtype}"
            )
        if clip.masks.shape != (t, s, s):
            raise MediaError(f"track masks must be ({t}, {s}, {s}), got {clip.masks.shape}")
        if len(clip.frame_indices) != t:
            raise MediaError(f"track has {t} crops but {len(clip.frame_indices)} frame indices")
        if clip.reference is not None and not 0 <= clip.reference < t:
            raise MediaError(f"reference index {clip.reference} outside the track (0..{t - 1})")
        return t

    @torch.no_grad()
    def generate_float(
        self, clip: TrackClip, progress: Callable[[int], None] | None = None
    ) -> Iterator[torch.Tensor]:
        """Yield (B, 3, S, S) float32 CPU tensors (unclamped, nominally [-1, 1]) in track order."""
        t = self._check(clip)
        if t == 0:
            return
        self.use_personal(clip.personal)
        ref_idx = (
            clip.reference
            if clip.reference is not None
            else choose_reference(clip.crops, clip.masks)
        )
        ref = self._images(clip.crops[ref_idx : ref_idx + 1])
        r, bs, m = self.model.mals.radius, self.batch_size, self.model
        ws_buf: list[torch.Tensor] = []  # W⁺ of frames [ws_lo, n_enc), fp32.
        pending: list[
            tuple[list[torch.Tensor], torch.Tensor]
        ] = []  # Maps, masks of [n_out, n_enc).
        ws_lo = n_enc = n_out = 0
        while n_out < t:
            hi = min(t, n_enc + bs)
            target = self._images(clip.crops[n_enc:hi])
            mask = self._masks(clip.masks[n_enc:hi])
            mel = self.mel.windows(clip.audio_16k, clip.fps, clip.frame_indices[n_enc:hi])
            with self._autocast():
                ws, feats = self._encode(
                    target,
                    ref.expand(hi - n_enc, -1, -1, -1),
                    mask,
                    mel.to(self.device),
                    self.audio_scale,
                )
            ws_buf.append(ws.float())
            pending.append((feats, mask))
            n_enc = hi
            ready = t if n_enc == t else n_enc - r  # Frames before `ready` have full context.
            if ready <= n_out:
                continue
            ws_all = torch.cat(ws_buf)  # Frames [ws_lo, n_enc).
            with self._threads():
                smooth = m.mals(ws_all[None])[0]  # MaLS in fp32, on the window only.
            feats_all = [torch.cat(f) for f in zip(*(p[0] for p in pending), strict=True)]
            mask_all = torch.cat([p[1] for p in pending])
            for a in range(n_out, ready, bs):
                b = min(ready, a + bs)
                lo, hi_ = a - n_out, b - n_out
                with self._autocast():
                    img = self._synthesize(
                        smooth[a - ws_lo : b - ws_lo],
                        [f[lo:hi_] for f in feats_all],
                        mask_all[lo:hi_],
                    )
                yield img.float().cpu()
                if progress is not None:
                    progress(b - a)
            # Keep r frames of W⁺ before the next pending frame, and the pending frames' maps.
            keep_from = max(0, ready - r)
            ws_buf = [ws_all[keep_from - ws_lo :]]
            ws_lo = keep_from
            cut = ready - n_out
            pending = [([f[cut:] for f in feats_all], mask_all[cut:])]
            n_out = ready

    def generate(
        self, clip: TrackClip, progress: Callable[[int], None] | None = None
    ) -> Iterator[np.ndarray]:
        """Yield one (S, S, 3) uint8 RGB crop per input crop, in order (Generator protocol)."""
        for batch in self.generate_float(clip, progress):
            assert_shape(batch, [None, 3, self.resolution, self.resolution], "generated batch")
            u8 = ((batch.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
            yield from u8.permute(0, 2, 3, 1).numpy()
