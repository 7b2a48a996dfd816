"""``lipdub data prepare``: turn talking-head clips into a compact training / evaluation set.

Per clip (one folder ``<out>/<clip id>/``):

- the shot is analysed with :func:`lipdub.analysis.shot_analysis.analyze_shot` (faces, 68 landmarks,
  tracks); the longest face track is kept (a clip of one speaker has one);
- every frame of that track is eye-aligned (:func:`similarity_to_template`) and cut to a
  ``size``×``size`` crop, written as ``crops_<size>.mp4`` (H.264 4:4:4, CRF :data:`CRF`, nearly
  lossless and ~20× smaller than raw);
- ``clip.npz``: the track's frame numbers, landmarks in crop pixels, the U-shaped masks (uint8),
  the 16 kHz mono audio and the per-frame mel windows (float16, :mod:`lipdub.model.mel`);
- ``info.json``: source, speaker, split, fps, frame count, warnings, and the audio/video offset.

The offset is *unestimated* at preparation time: it can only be measured with a trained SyncNet
(:func:`lipdub.train.offsets.estimate_offsets`, run by ``lipdub data prepare --syncnet``
or after ``lipdub train syncnet``), which stores it in ``info.json``; the dataset shifts the audio
by it when it is confident. Clips whose audio is a separate WAV (``audio_file`` column) are paired
with it; sample 0 of the audio is taken to be the start of frame 0.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from lipdub.analysis.align import similarity_to_template, transform_points, warp_to_crop
from lipdub.analysis.masks import UShapePlanner
from lipdub.analysis.records import FaceTrack
from lipdub.analysis.settings import AnalysisSettings
from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.errors import ConfigError, MediaError
from lipdub.media.audio import load_audio, to_model_audio
from lipdub.media.read import open_video
from lipdub.model.config import MelConfig
from lipdub.model.mel import MelFrontend

log = logging.getLogger(__name__)

CRF = 10  # x264 constant rate factor of the crop videos (0 = lossless, 18 ≈ visually lossless).
MIN_TRACK_FRAMES = 10  # Shorter tracks give too few 5-frame windows to be worth keeping.
INFO = "info.json"
ARRAYS = "clip.npz"


@dataclass(frozen=True)
class ClipSpec:
    """One clip to prepare, from the command line or a clips TSV row."""

    video: Path  # The video file.
    audio: Path | None = None  # A separate WAV of its speech, or None for the video's own track.
    speaker: str = ""  # Speaker id (train/test splits never share one); default: the file stem.
    split: str = ""  # Split name from the TSV ("train", "test", ...), or "".
    own_speech: str = ""  # "yes" / "likely" / ... from the TSV.

    @property
    def clip_id(self) -> str:
        """Folder name of the prepared clip (the file stem, made filesystem-safe)."""
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.video.stem)


def read_clips_tsv(path: Path, split: str | None = None) -> list[ClipSpec]:
    """Clips listed in a TSV with columns ``file``, ``audio_file``, ``speaker``, ``split``.

    Paths are relative to the TSV's folder. ``split`` keeps only that split (None = all).

    Raises:
        ConfigError: the file lacks the ``file`` column or names a missing file.
    """
    path = Path(path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if rows and "file" not in rows[0]:
        raise ConfigError(f"{path}: a clips TSV needs a 'file' column")
    out = []
    for row in rows:
        if split is not None and row.get("split", "") != split:
            continue
        video = path.parent / row["file"]
        audio = path.parent / row["audio_file"] if row.get("audio_file") else None
        for p in (video, audio):
            if p is not None and not p.is_file():
                raise ConfigError(f"{path}: listed file {p} does not exist")
        out.append(
            ClipSpec(
                video=video,
                audio=audio,
                speaker=row.get("speaker") or video.stem,
                split=row.get("split", ""),
                own_speech=row.get("own_speech", ""),
            )
        )
    return out


def specs_from_args(inputs: Iterable[Path], split: str | None) -> list[ClipSpec]:
    """Expand command-line inputs: ``.tsv`` files become their rows, videos stay themselves."""
    specs: list[ClipSpec] = []
    for p in inputs:
        p = Path(p)
        if p.suffix.lower() == ".tsv":
            specs += read_clips_tsv(p, split)
        else:
            wav = p.with_suffix(".wav")
            specs.append(ClipSpec(video=p, audio=wav if wav.is_file() else None, speaker=p.stem))
    return specs


def write_crops_video(path: Path, crops: np.ndarray, fps: Fraction) -> None:
    """Encode (T, S, S, 3) uint8 RGB crops as H.264 4:4:4 at CRF :data:`CRF`."""
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width = stream.height = crops.shape[1]
        stream.pix_fmt = "yuv444p"
        stream.options = {"crf": str(CRF), "preset": "medium"}
        for crop in crops:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(crop), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    tmp.replace(path)


def read_crops_video(path: Path) -> np.ndarray:
    """(T, S, S, 3) uint8 RGB frames of a crop video written by :func:`write_crops_video`."""
    with av.open(str(path)) as f:
        return np.stack([fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)])


def prepare_clip(
    spec: ClipSpec,
    out_dir: Path,
    size: int = 128,
    settings: AnalysisSettings | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any] | None:
    """Prepare one clip into ``out_dir/<clip id>``; return its info record (None = skipped).

    Raises:
        MediaError: the video or its audio cannot be read.
    """
    settings = settings or AnalysisSettings(crop_size=size)
    dest = Path(out_dir) / spec.clip_id
    if (dest / INFO).is_file():
        info = json.loads((dest / INFO).read_text())
        if info.get("size") == size:
            log.info("%s: already prepared", spec.clip_id)
            return info
    analysis = analyze_shot(spec.video, settings=settings, cache_dir=cache_dir)
    tracks = [t for t in analysis.tracks if len(t) >= MIN_TRACK_FRAMES]
    if not tracks:
        log.warning("%s: no face track of %d+ frames; skipped", spec.video, MIN_TRACK_FRAMES)
        return None
    track = max(tracks, key=len)
    n = len(track)
    crops, masks, lms = _aligned(spec.video, track, analysis.stop, size, settings)
    audio_src = spec.audio if spec.audio is not None else spec.video
    audio = to_model_audio(load_audio(audio_src))
    mel_cfg = MelConfig()
    mel = MelFrontend(mel_cfg).windows(audio, analysis.fps, track.frames, mel_cfg.sample_rate)
    dest.mkdir(parents=True, exist_ok=True)
    write_crops_video(dest / f"crops_{size}.mp4", crops, analysis.fps)
    np.savez_compressed(
        dest / ARRAYS,
        frames=track.frames.astype(np.int32),
        landmarks=lms,
        masks=masks,
        audio_16k=audio.astype(np.float32),
        mel=mel.numpy().astype(np.float16),
        descriptor=track.descriptor,
    )
    audio_s = len(audio) / mel_cfg.sample_rate
    info = {
        "clip_id": spec.clip_id,
        "source": str(spec.video),
        "audio_source": str(audio_src),
        "speaker": spec.speaker,
        "split": spec.split,
        "own_speech": spec.own_speech,
        "size": size,
        "fps": [analysis.fps.numerator, analysis.fps.denominator],
        "frames": n,
        "first_frame": int(track.frames[0]),
        "video_frames": analysis.frame_count,
        "audio_seconds": round(audio_s, 3),
        "track_coverage": round(n / max(analysis.frame_count, 1), 3),
        "warnings": analysis.warnings,
        "offset_frames": None,  # Unestimated until a trained SyncNet measures it.
        "offset_confidence": None,
        "offset_applied": False,
        "offset_method": "unestimated",
    }
    (dest / INFO).write_text(json.dumps(info, indent=1) + "\n")
    log.info("%s: %d frames, speaker %s, split %s", spec.clip_id, n, spec.speaker, spec.split)
    return info


def _aligned(
    video_path: Path, track: FaceTrack, stop: int, size: int, settings: AnalysisSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The track's aligned crops (T, size, size, 3) uint8, their masks (T, size, size) uint8
    and landmarks (T, 68, 2) float32 in crop coordinates."""
    mats = np.stack([similarity_to_template(lm, size) for lm in track.landmarks])
    planner = UShapePlanner(settings)
    n = len(track)
    crops = np.zeros((n, size, size, 3), np.uint8)
    masks = np.zeros((n, size, size), np.uint8)
    lms = np.zeros((n, 68, 2), np.float32)
    with open_video(video_path) as video:
        for i, frame in enumerate(video.frames(0, stop)):
            j = track.at(i)
            if j is None:
                continue
            crops[j] = warp_to_crop(frame, mats[j], size)
            lms[j] = transform_points(mats[j], track.landmarks[j])
            masks[j] = np.round(planner.plan(lms[j], size) * 255).astype(np.uint8)
    return crops, masks, lms


def check_speakers(infos: list[dict[str, Any]]) -> list[str]:
    """Speakers that appear in more than one split (must be none for a fair test)."""
    splits: dict[str, set[str]] = {}
    for info in infos:
        splits.setdefault(info["speaker"], set()).add(info.get("split", ""))
    return sorted(s for s, v in splits.items() if len(v - {""}) > 1)


def prepare(
    specs: list[ClipSpec],
    out_dir: Path,
    size: int = 128,
    cache_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Prepare every clip; write ``<out>/index.json``; return the info records.

    A clip that cannot be read is logged and skipped (the others still get prepared).

    Raises:
        ConfigError: no clips given, or a speaker is in two splits.
    """
    if not specs:
        raise ConfigError("no clips to prepare (give videos or a clips TSV)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    infos = []
    for k, spec in enumerate(specs):
        log.info("[%d/%d] %s", k + 1, len(specs), spec.video.name)
        try:
            info = prepare_clip(spec, out_dir, size, cache_dir=cache_dir)
        except MediaError as exc:
            log.warning("%s: skipped (%s)", spec.video, exc)
            continue
        if info is not None:
            infos.append(info)
    shared = check_speakers(load_index(out_dir, missing_ok=True) + infos)
    if shared:
        raise ConfigError(f"{out_dir}: speakers in more than one split: {', '.join(shared)}")
    write_index(out_dir)
    return infos


def load_index(out_dir: Path, missing_ok: bool = False) -> list[dict[str, Any]]:
    """The info records of every prepared clip in ``out_dir`` (read from the clip folders)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        if missing_ok:
            return []
        raise ConfigError(f"{out_dir}: no prepared data here (run `lipdub data prepare`)")
    return [json.loads(p.read_text()) for p in sorted(out_dir.glob(f"*/{INFO}"))]


def write_index(out_dir: Path) -> None:
    """Write ``index.json`` (all clips' info records) for a quick look."""
    infos = load_index(out_dir)
    (Path(out_dir) / "index.json").write_text(json.dumps(infos, indent=1) + "\n")


def update_info(clip_dir: Path, **values: Any) -> None:
    """Merge ``values`` into a prepared clip's ``info.json``."""
    path = Path(clip_dir) / INFO
    info = json.loads(path.read_text())
    info.update(values)
    path.write_text(json.dumps(info, indent=1) + "\n")
