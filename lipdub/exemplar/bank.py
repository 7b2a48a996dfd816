"""The actor's bank: real frames of their lower face at native resolution, indexed for selection.

A :class:`BankPart` is one run of footage of the actor (a face track of the shot being dubbed, of
another shot, or of their footage in lipdub.toml): per frame, the lower-face patch cut from the
source at its own resolution (not resampled), the landmarks in frame pixels and where the patch
lies in the frame. :func:`features` turns landmarks and patches into what selection compares —
mouth shape, head pose (yaw, nose length), skin colour — and what makes a frame unusable: a
turned head, a face the detector did not see (bridged), a mouth or chin cut off by the frame
edge, or a
mouth blurred by motion. A :class:`Bank` is the usable frames of several parts, flattened.

Parts are saved as ``patches.npy`` (memory-mapped on load) beside ``part.npz`` and ``part.json``,
so ``lipdub personalize`` can build an actor's bank once and every render reuses it.
"""

from __future__ import annotations

import json
import mmap
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from lipdub.analysis.masks import lip_gap, yaw_ratio
from lipdub.analysis.mouth_shape import mouth_shape
from lipdub.analysis.records import JAW, LEFT_EYE, MOUTH, RIGHT_EYE, FaceTrack
from lipdub.analysis.trust import trusted_frames

#: On-disk layout version of a saved part.
FORMAT = "lipdub-bank/1"
#: Where an actor's stored parts live inside their folder (``actors/NAME``): one folder a part.
BANK_DIR = "bank"
#: Patch margins around the lower face, in inter-ocular distances (IOD): sides, above the nose
#: bridge, below the chin (room for a wider-open jaw and the mask's margin).
SIDE_MARGIN, TOP_MARGIN, BOTTOM_MARGIN = 0.6, 0.1, 1.0
#: A head turned further than this yaw ratio (−1..1) shows another side of the mouth: unusable.
MAX_YAW = 0.45
#: A mouth whose sharpness is below this share of its reference (:func:`sharpness_reference`)
#: is motion-blurred: unusable.
MIN_SHARPNESS = 0.5
NOSE_TIP = 30
#: Points that must lie inside the frame for a frame to be usable: lower jaw and mouth.
LOWER_FACE = [*range(4, 13), *range(MOUTH.start, MOUTH.stop)]


def iod(landmarks: np.ndarray) -> np.ndarray:
    """Inter-ocular distance of (..., 68, 2) landmarks."""
    lm = np.asarray(landmarks, np.float64)
    d = lm[..., LEFT_EYE, :].mean(-2) - lm[..., RIGHT_EYE, :].mean(-2)
    return np.maximum(np.linalg.norm(d, axis=-1), 1e-6)


def patch_box(landmarks: np.ndarray) -> tuple[int, int, int, int]:
    """Unclipped ``(x0, y0, x1, y1)`` frame box of a frame's lower-face patch."""
    lm = np.asarray(landmarks, np.float64)
    d = float(iod(lm))
    pts = lm[[*range(JAW.start, JAW.stop), 27, 28, *range(MOUTH.start, MOUTH.stop)]]
    x0 = np.floor(pts[:, 0].min() - SIDE_MARGIN * d)
    x1 = np.ceil(pts[:, 0].max() + SIDE_MARGIN * d) + 1
    y0 = np.floor(pts[:, 1].min() - TOP_MARGIN * d)
    y1 = np.ceil(pts[:, 1].max() + BOTTOM_MARGIN * d) + 1
    return int(x0), int(y0), int(x1), int(y1)


def pose(landmarks: np.ndarray) -> np.ndarray:
    """(..., 2) yaw ratio and nose length (eyes' midpoint to nose tip, in IOD; pitch proxy)."""
    lm = np.asarray(landmarks, np.float64)
    eyes = 0.5 * (lm[..., LEFT_EYE, :].mean(-2) + lm[..., RIGHT_EYE, :].mean(-2))
    nose = np.linalg.norm(lm[..., NOSE_TIP, :] - eyes, axis=-1) / iod(lm)
    yaw = np.array([yaw_ratio(x) for x in lm.reshape(-1, 68, 2)]).reshape(nose.shape)
    return np.stack([yaw, nose], axis=-1)


def skin_colour(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(3,) mean RGB of the cheeks beside the nose (rows nose middle..bottom, jaw 2..14).

    Lighting summary that the mouth itself (open, closed, teeth) does not change.
    """
    lm = np.asarray(landmarks, np.float64)
    h, w = image.shape[:2]
    y0, y1 = round(float(lm[29, 1])), round(float(lm[33, 1])) + 1
    x0, x1 = round(float(lm[2, 0])), round(float(lm[14, 0])) + 1
    y0, y1 = max(0, min(y0, h - 1)), max(1, min(y1, h))
    x0, x1 = max(0, min(x0, w - 1)), max(1, min(x1, w))
    region = image[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)]
    return region.reshape(-1, 3).astype(np.float64).mean(0)


def sharpness(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Variance of the Laplacian over the lips' box (motion blur makes it small; compared
    within one part, where the face's size is about constant)."""
    lm = np.asarray(landmarks, np.float64)[MOUTH]
    d = float(iod(np.asarray(landmarks)))
    pad = 0.15 * d
    h, w = image.shape[:2]
    x0, y0 = (np.floor(lm.min(0) - pad)).astype(int)
    x1, y1 = (np.ceil(lm.max(0) + pad)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return 0.0
    grey = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F).var())


#: Frames either side (in order of mouth opening) whose median is a frame's sharpness reference.
SHARPNESS_NEIGHBOURS = 10


def sharpness_reference(sharp: np.ndarray, gaps: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """(N,) what each frame's lip sharpness is judged against: the median over the usable frames
    of the same part whose mouth is open about as far (the :data:`SHARPNESS_NEIGHBOURS` nearest
    in inner-lip gap each side).

    Teeth and an open mouth's inner edges are most of the lips' edge energy, so a closed mouth
    is always "less sharp" than the part's median: judged against that, every closed frame
    counted as blurred and p/b/m had nothing to close with. Against mouths of its own opening,
    only real motion blur stands out. Where no frame is usable the reference is 1.
    """
    sharp = np.asarray(sharp, np.float64)
    ref = np.ones(len(sharp))
    idx = np.flatnonzero(usable)
    if idx.size == 0:
        return ref
    order = idx[np.argsort(np.asarray(gaps)[idx], kind="stable")]
    values = sharp[order]
    k = SHARPNESS_NEIGHBOURS
    rank = np.empty(len(sharp), np.int64)
    # Every frame (usable or not) is placed among the usable ones by its gap.
    rank[:] = np.searchsorted(np.asarray(gaps)[order], np.asarray(gaps), side="left")
    for i in range(len(sharp)):
        a = max(0, min(rank[i], len(order)) - k)
        ref[i] = max(float(np.median(values[a : rank[i] + k + 1])), 1e-9)
    return ref


def _gaps(raw: np.ndarray | None, smoothed: np.ndarray) -> np.ndarray:
    """(N,) inner-lip gap in IOD of the unsmoothed landmarks (the smoothed where none)."""
    lm = np.asarray(smoothed if raw is None else raw, np.float64).reshape(-1, 68, 2)
    return lip_gap(lm) / iod(lm)


#: A memory-mapped bank's pages are let go every this many patches cut or read: the file (and the
#: kernel's page cache) keeps them, but pages a process has touched count in its resident set
#: until it lets them go, so a long shot's render grew by its whole bank (+64% peak RSS from
#: 250 to 2,500 frames at 1080p, bench/results.md `## render`).
RELEASE_EVERY = 50


def release_pages(array: np.ndarray) -> None:
    """Let a memory-mapped array's pages out of this process's resident set (``madvise``
    MADV_DONTNEED on its mapping). The mapping is shared and file-backed, so nothing is lost:
    written pages stay in the page cache and the next read maps them again. No-op for an
    in-memory array or where the platform has no ``madvise``."""
    mapping = getattr(array, "_mmap", None)
    if isinstance(array, np.memmap) and mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


@dataclass
class BankPart:
    """Frames of one piece of the actor's footage; see the module doc."""

    source: str  # What it was cut from (a path, or "shot:<id>"): holdout matches on it.
    frames: np.ndarray  # (N,) int frame numbers in that source's numbering.
    landmarks: np.ndarray  # (N, 68, 2) float32, frame pixels.
    origins: np.ndarray  # (N, 2) int32 patch top-left corner in the frame.
    sizes: np.ndarray  # (N, 2) int32 patch height and width (the rest of its slot is unused).
    patches: np.ndarray  # (N, H, W, 3) uint8, top-left aligned (memory-mapped when loaded).
    usable: np.ndarray  # (N,) bool.
    light: np.ndarray  # (N, 3) float32 mean skin colour.
    sharp: np.ndarray  # (N,) float32 lip sharpness.
    # (N, 68, 2) float32 landmarks before temporal smoothing (None: a part saved before they
    # were kept). Smoothing rounds off a 2-frame closure; the mouth's class is read from these.
    raw_landmarks: np.ndarray | None = None
    reads: int = field(default=0, compare=False, repr=False)  # Patches read (see patch()).

    def __len__(self) -> int:
        return len(self.frames)

    def patch_landmarks(self, i: int) -> np.ndarray:
        """(68, 2) landmarks of frame ``i`` in its patch's pixels."""
        return self.landmarks[i].astype(np.float64) - self.origins[i]

    def patch(self, i: int) -> np.ndarray:
        """(h, w, 3) patch of frame ``i`` (a view; read from disk when memory-mapped, and the
        mapping's pages let go every RELEASE_EVERY reads: a view stays valid, it maps them
        again when read)."""
        h, w = (int(v) for v in self.sizes[i])
        self.reads += 1
        if self.reads % RELEASE_EVERY == 0:
            release_pages(self.patches)
        return self.patches[i, :h, :w]

    def save(self, directory: Path) -> None:
        """Write the part into ``directory`` (created); arrays first, JSON last."""
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / "patches.npy"
        mapped = self.patches if isinstance(self.patches, np.memmap) else None
        path = mapped.filename if mapped is not None else None
        if mapped is not None and path is not None and Path(path).resolve() == target.resolve():
            mapped.flush()  # Cut straight into place (PartBuilder's patches_file).
        else:
            np.save(target, np.asarray(self.patches))
        arrays = {
            "frames": self.frames,
            "landmarks": self.landmarks,
            "origins": self.origins,
            "sizes": self.sizes,
            "usable": self.usable,
            "light": self.light,
            "sharp": self.sharp,
        }
        if self.raw_landmarks is not None:
            arrays["raw_landmarks"] = self.raw_landmarks
        np.savez(directory / "part.npz", allow_pickle=False, **arrays)
        meta = {"format": FORMAT, "source": self.source, "frames": len(self)}
        (directory / "part.json").write_text(json.dumps(meta, indent=1))

    @classmethod
    def load(cls, directory: Path) -> BankPart:
        """Read what :meth:`save` wrote (patches memory-mapped).

        Raises:
            ValueError: another format.
        """
        meta = json.loads((directory / "part.json").read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{directory}: bank format {meta.get('format')!r} is not {FORMAT}")
        with np.load(directory / "part.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        patches = np.load(directory / "patches.npy", mmap_mode="r", allow_pickle=False)
        return cls(source=meta["source"], patches=patches, **arrays)


def usable_by_landmarks(track: FaceTrack, frame_shape: tuple[int, ...]) -> np.ndarray:
    """(T,) bool: the track's frames a bank may use as far as landmarks tell — mouth and chin
    inside the frame, landmarks that agree with the face (:func:`trusted_frames`), a head not
    turned past :data:`MAX_YAW`, and a face the detector saw (not bridged). Only the lips'
    sharpness, which needs the pixels, is judged later (:meth:`PartBuilder.finish`)."""
    h, w = frame_shape[:2]
    lm = np.asarray(track.landmarks, np.float64).reshape(-1, 68, 2)
    lower = lm[:, LOWER_FACE]
    usable = ((lower >= 0) & (lower < (w, h))).all(axis=(1, 2))
    usable &= trusted_frames(track, frame_shape)
    usable &= np.abs(pose(track.landmarks)[:, 0]) <= MAX_YAW
    if track.detected is not None:
        usable &= np.asarray(track.detected, bool)
    return usable


class PartBuilder:
    """Cuts a face track's patches while the source streams past (one frame at a time)."""

    def __init__(
        self,
        source: str,
        track: FaceTrack,
        frame_shape: tuple[int, ...],
        patches_file: Path | None = None,
    ) -> None:
        """Arguments:
        source: label of the footage (see :attr:`BankPart.source`).
        track: the face track (frames counted from the footage's first analysed frame).
        frame_shape: (H, W, ...) of the footage's frames.
        patches_file: where to memory-map the patches (None: in memory).
        """
        self.source, self.track, self.frame_shape = source, track, frame_shape
        h, w = frame_shape[:2]
        boxes = np.array([patch_box(lm) for lm in track.landmarks], np.int64).reshape(-1, 4)
        # The patch may be cut by the frame's edge (tight crops), but not the mouth and chin.
        self.usable = usable_by_landmarks(track, frame_shape)
        boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w)
        boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h)
        self.boxes = boxes
        n = len(track)
        ph = int((boxes[:, 3] - boxes[:, 1]).max(initial=1))
        pw = int((boxes[:, 2] - boxes[:, 0]).max(initial=1))
        shape = (n, ph, pw, 3)
        self.patches = (
            np.lib.format.open_memmap(patches_file, "w+", np.uint8, shape)
            if patches_file is not None
            else np.zeros(shape, np.uint8)
        )
        self.light = np.zeros((n, 3), np.float32)
        self.sharp = np.zeros(n, np.float32)
        self.seen = np.zeros(n, bool)

    def add(self, j: int, frame: np.ndarray) -> None:
        """Cut track frame ``j``'s patch from ``frame`` (the full source frame)."""
        x0, y0, x1, y1 = (int(v) for v in self.boxes[j])
        patch = frame[y0:y1, x0:x1]
        self.patches[j, : y1 - y0, : x1 - x0] = patch
        lm = self.track.landmarks[j].astype(np.float64) - (x0, y0)
        self.light[j] = skin_colour(patch, lm)
        self.sharp[j] = sharpness(patch, lm)
        self.seen[j] = True
        if int(self.seen.sum()) % RELEASE_EVERY == 0:
            release_pages(self.patches)

    def finish(self) -> BankPart:
        """The part, with each frame's usability decided (see the module doc)."""
        t, b = self.track, self.boxes
        usable = self.seen & self.usable
        if usable.any():
            ref = sharpness_reference(self.sharp, _gaps(t.raw_landmarks, t.landmarks), usable)
            usable &= self.sharp >= MIN_SHARPNESS * ref
        return BankPart(
            source=self.source,
            frames=np.asarray(t.frames, np.int64),
            landmarks=np.asarray(t.landmarks, np.float32),
            raw_landmarks=None
            if t.raw_landmarks is None
            else np.asarray(t.raw_landmarks, np.float32),
            origins=self.boxes[:, :2].astype(np.int32),
            sizes=np.stack([b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]], 1).astype(np.int32),
            patches=self.patches,
            usable=usable,
            light=self.light,
            sharp=self.sharp,
        )


@dataclass
class Bank:
    """The usable frames of several parts, flattened (index b = one bank frame)."""

    parts: list[BankPart]
    part: np.ndarray  # (N,) int index into parts.
    local: np.ndarray  # (N,) int frame index within its part.
    shapes: np.ndarray  # (N, 20, 2) mouth shapes.
    pose: np.ndarray  # (N, 2) yaw ratio, nose length.
    light: np.ndarray  # (N, 3) mean skin colour.
    follows: np.ndarray  # (N,) bool: b is the source frame right after b − 1.
    # (N,) lip sharpness over its reference (:func:`sharpness_reference`: mouths as open in the
    # same part; parts differ in resolution
    # and compression, so sharpness is only compared within a part).
    sharp: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    # (N, 20, 2) mouth shapes of the landmarks before smoothing (the smoothed ones where a part
    # has none): what the frame's pixels show, for its mouth class.
    raw_shapes: np.ndarray = field(default_factory=lambda: np.zeros((0, 20, 2), np.float32))

    @classmethod
    def of(cls, parts: list[BankPart]) -> Bank:
        """Flatten the usable frames of ``parts``."""
        part, local = [], []
        for p, bp in enumerate(parts):
            idx = np.flatnonzero(bp.usable)
            part.append(np.full(len(idx), p, np.int64))
            local.append(idx.astype(np.int64))
        part_a = np.concatenate(part) if part else np.zeros(0, np.int64)
        local_a = np.concatenate(local) if local else np.zeros(0, np.int64)
        lms = (
            np.stack([parts[p].landmarks[i] for p, i in zip(part_a, local_a, strict=True)])
            if len(part_a)
            else np.zeros((0, 68, 2), np.float32)
        )
        frames = np.array(
            [parts[p].frames[i] for p, i in zip(part_a, local_a, strict=True)], np.int64
        )
        follows = np.zeros(len(part_a), bool)
        if len(part_a) > 1:
            follows[1:] = (part_a[1:] == part_a[:-1]) & (frames[1:] == frames[:-1] + 1)
        light = (
            np.stack([parts[p].light[i] for p, i in zip(part_a, local_a, strict=True)])
            if len(part_a)
            else np.zeros((0, 3), np.float32)
        )
        refs = [
            sharpness_reference(bp.sharp, _gaps(bp.raw_landmarks, bp.landmarks), bp.usable)
            for bp in parts
        ]
        sharp = np.array(
            [parts[p].sharp[i] / refs[p][i] for p, i in zip(part_a, local_a, strict=True)],
            np.float32,
        )
        raw = [
            parts[p].landmarks[i] if parts[p].raw_landmarks is None else parts[p].raw_landmarks[i]
            for p, i in zip(part_a, local_a, strict=True)
        ]
        return cls(
            parts=parts,
            part=part_a,
            local=local_a,
            shapes=mouth_shape(lms),
            raw_shapes=mouth_shape(np.stack(raw)) if raw else np.zeros((0, 20, 2), np.float32),
            pose=pose(lms).reshape(-1, 2),
            light=light,
            follows=follows,
            sharp=sharp,
        )

    def __len__(self) -> int:
        return len(self.part)

    def frame_of(self, b: int) -> tuple[BankPart, int]:
        """The part and the index within it of bank frame ``b``."""
        return self.parts[int(self.part[b])], int(self.local[b])

    def sources(self) -> tuple[list[str], np.ndarray]:
        """Each frame's source label and frame number (for holding out neighbours)."""
        labels = [self.parts[int(p)].source for p in self.part]
        frames = np.array(
            [self.parts[int(p)].frames[int(i)] for p, i in zip(self.part, self.local, strict=True)],
            np.int64,
        )
        return labels, frames


def stored_parts(bank_dir: Path) -> list[BankPart]:
    """The parts saved under ``bank_dir`` (none when it does not exist), in name order."""
    if not bank_dir.is_dir():
        return []
    return [BankPart.load(p.parent) for p in sorted(bank_dir.glob("**/part.json"))]
