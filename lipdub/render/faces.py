"""Per-shot face work for a real generator: analysis, aligned crops, generation, paste-back.

:class:`FaceWork` analyses the shot once (cached), cuts the aligned crops and mouth masks of every
face track to be dubbed into memory-mapped scratch files (one streaming pass over the source),
and then, per dub, generates new crops and returns the function that pastes them into each frame
during the encode pass. Scratch files go when the shot is done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from lipdub.analysis.align import (
    paste_region,
    scale_of,
    similarity_to_template,
    transform_points,
    warp_to_crop,
    warp_to_frame,
)
from lipdub.analysis.pipeline import analyze_shot
from lipdub.analysis.records import FaceTrack
from lipdub.analysis.rest import RestPlan, plan_rest
from lipdub.analysis.settings import AnalysisSettings
from lipdub.analysis.trust import trusted_frames
from lipdub.config.project import ACTOR_DIR, PERSONAL_FILE
from lipdub.config.shots import Dub
from lipdub.events import ShotEvent
from lipdub.media import audio as audio_io
from lipdub.media.read import open_video
from lipdub.media.stream import prefetch
from lipdub.model.track_clip import TrackClip
from lipdub.plugin_manager import PluginManager
from lipdub.render.audio import dub_audio
from lipdub.render.protocols import Generator, NativeGenerator, NativeTrack, TrackContext
from lipdub.render.scratch import remove_scratch, scratch_dir
from lipdub.render.shot_job import ShotJob

log = logging.getLogger(__name__)

#: Default feather of the blend mask, as a fraction of the crop's size in frame pixels.
FEATHER_FRACTION = 0.03


@dataclass
class _TrackData:
    track: FaceTrack
    crops: np.ndarray | None = None  # (T, S, S, 3) uint8 memmap (crop generators).
    masks: np.ndarray | None = None  # (T, S, S) float32 memmap.
    matrices: np.ndarray | None = None  # (T, 2, 3) frame -> crop.
    generated: np.ndarray | None = None  # (T, S, S, 3) uint8 memmap, per dub.
    rest: RestPlan | None = None  # Generated / rest crop / source weights, per dub.
    native: NativeTrack | None = None  # The track of a native generator (exemplar).
    planned: bool = False  # A native track has been planned for the current dub.
    trusted: np.ndarray | None = None  # (T,) bool: frames whose landmarks can be pasted on.


class FaceWork:
    """Analysis + crops of one shot, reused by every dub of it."""

    def __init__(
        self,
        job: ShotJob,
        plugins: PluginManager,
        generator: Generator | NativeGenerator,
        emit: Callable[[ShotEvent], None],
        fallback: Callable[[], Generator] | None = None,
    ) -> None:
        """Arguments:
        job: the shot job.
        plugins: the plugin manager (stages are built from it).
        generator: the shot's generator, crop-space or native.
        emit: where shot events go.
        fallback: makes the crop generator for tracks a native generator cannot serve.
        """

        self.job, self.shot, self.emit = job, job.shot, emit
        self.generator = generator
        self._fallback = fallback
        self.crop_generator: Generator | None = (
            None if isinstance(generator, NativeGenerator) else generator
        )
        self.fallbacks: list[str] = []  # Why tracks fell back to the crop generator.
        settings = self.shot.settings
        options = dict(settings.analysis)
        self.analysis_settings = AnalysisSettings.from_options(options)
        stages = {
            name: plugins.create(name, settings.stage(name), options)
            for name in ("faces", "tracker", "masks")
        }
        self.planner = stages["masks"]
        self.detector = stages["faces"]
        self.blender = plugins.create("blender", settings.stage("blender"), dict(settings.blend))
        self.feather = float(settings.blend.get("feather_fraction", FEATHER_FRACTION))
        self.warnings: list[str] = []
        self._scratch = scratch_dir(job.cache_dir, self.shot.id)
        try:
            self.analysis = analyze_shot(
                self.shot.source,
                self.shot.start,
                self.shot.stop,
                {a.name: a for a in job.actors},
                self.analysis_settings,
                stages,
                job.cache_dir,
                self._progress("analysis"),
                conform=self.shot.settings.conform_vfr,
            )
            self.warnings += self.analysis.warnings
            self.tracks = self._first_pass(self._chosen_tracks())
        except BaseException:
            self.close()
            raise
        for w in self.warnings:
            emit(ShotEvent("warning", self.shot.id, message=w))

    def __enter__(self) -> FaceWork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Remove the scratch files."""

        self.tracks = []
        remove_scratch(self._scratch)

    def _progress(self, stage: str) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            self.emit(ShotEvent("progress", self.shot.id, stage=stage, done=done, total=total))

        return report

    def _chosen_tracks(self) -> list[FaceTrack]:
        wanted = self.shot.actors
        tracks = self.analysis.tracks
        if wanted:
            for actor in wanted:
                if not any(t.actor == actor for t in tracks):
                    self.warnings.append(
                        f"actor {actor!r} not found in shot {self.shot.id}; their face (if any) "
                        f"passes through untouched"
                    )
            tracks = [t for t in tracks if t.actor in wanted]
        if not tracks:
            self.warnings.append(f"shot {self.shot.id}: no face to dub; frames pass through")
        return tracks

    def track_summary(self) -> list[dict[str, Any]]:
        """Per dubbed track: id, actor, first/last frame (for the report)."""
        return [
            {
                "track": d.track.track_id,
                "actor": d.track.actor,
                "first": int(d.track.frames[0]),
                "last": int(d.track.frames[-1]),
            }
            for d in self.tracks
        ]

    def _native_tracks(self, tracks: list[FaceTrack]) -> dict[int, NativeTrack]:
        """Open the native generator's tracks; a track it cannot serve falls back, warned."""
        gen = self.generator
        if not isinstance(gen, NativeGenerator):
            return {}
        a = self.analysis
        out: dict[int, NativeTrack] = {}
        for t in tracks:
            context = TrackContext(
                source=f"shot:{self.shot.id}",
                frame_shape=(a.height, a.width, 3),
                scratch=self._scratch,
                planner=self.planner,
                feather=self.feather,
                actor_dir=self._actor_dir(t.actor),
            )
            reason = gen.thin(t, context)
            if reason is None:
                out[t.track_id] = gen.open_track(t, context)
                continue
            message = (
                f"shot {self.shot.id}: track {t.track_id} ({t.actor}): the actor's bank is too "
                f"thin for the exemplar path ({reason}); this track uses the fallback generator"
            )
            self.warnings.append(message)
            self.fallbacks.append(message)
        return out

    def _first_pass(self, tracks: list[FaceTrack]) -> list[_TrackData]:
        """One pass over the source: native tracks collect their frames, the others get their
        aligned crops, masks and transforms cut."""
        native = self._native_tracks(tracks)
        data = []
        for t in tracks:
            if t.track_id in native:
                data.append(_TrackData(t, native=native[t.track_id]))
                continue
            if self.crop_generator is None:
                assert self._fallback is not None, "a native generator needs a fallback"
                self.crop_generator = self._fallback()
            size = self.crop_generator.resolution
            n = len(t.frames)
            stem = self._scratch / f"track{t.track_id}"
            crops = np.lib.format.open_memmap(
                f"{stem}_crops.npy", "w+", np.uint8, (n, size, size, 3)
            )
            masks = np.lib.format.open_memmap(
                f"{stem}_masks.npy", "w+", np.float32, (n, size, size)
            )
            mats = np.stack([similarity_to_template(lm, size) for lm in t.landmarks])
            data.append(_TrackData(t, crops, masks, mats))
        if not data:
            return data
        report = self._progress("crops")
        total = self.shot.frame_count
        with open_video(self.shot.source, conform=self.shot.settings.conform_vfr) as src:
            for i, frame in enumerate(prefetch(src.frames(self.shot.start, self.shot.stop))):
                for d in data:
                    j = d.track.at(i)
                    if j is not None:
                        self._take(d, j, frame)
                if (i + 1) % 25 == 0 or i + 1 == total:
                    report(i + 1, total)
        for d in data:
            if d.native is not None:
                d.native.finish()
            d.trusted = self._trusted(d.track)
        return data

    def _trusted(self, track: FaceTrack) -> np.ndarray:
        """Frames of ``track`` that can be pasted on (:mod:`lipdub.analysis.trust`); the rest
        pass through untouched, and the warning says how many."""
        a = self.analysis
        trusted = trusted_frames(track, (a.height, a.width, 3))
        bad = int((~trusted).sum())
        if bad:
            self.warnings.append(
                f"shot {self.shot.id}: track {track.track_id} ({track.actor}): {bad} frame(s) "
                f"pass through untouched: the landmarks do not agree with the face there (it "
                f"leaves the frame, moves too fast or the fit jumped)"
            )
        return trusted

    def _take(self, d: _TrackData, j: int, frame: np.ndarray) -> None:
        """First pass, track frame ``j``: hand it to the native track or cut its crop."""
        if d.native is not None:
            d.native.add_frame(j, frame)
            return
        assert d.crops is not None and d.masks is not None and d.matrices is not None
        size = d.crops.shape[1]
        d.crops[j] = warp_to_crop(frame, d.matrices[j], size)
        lm_crop = transform_points(d.matrices[j], d.track.landmarks[j])
        d.masks[j] = self.planner.plan(lm_crop, size)

    def _actor_dir(self, actor: str) -> Path | None:
        """The actor's folder in the project (what ``lipdub personalize`` stored), if used."""
        if not self.shot.settings.personal:
            return None
        path = self.job.project_root / ACTOR_DIR.format(name=actor)
        return path if path.is_dir() else None

    def _personal_file(self, actor: str) -> Path | None:
        if not self.shot.settings.personal:
            return None
        path = self.job.project_root / PERSONAL_FILE.format(name=actor)
        return path if path.is_file() else None

    def render_dub(self, dub: Dub) -> Callable[[int, np.ndarray], np.ndarray]:
        """Generate (or plan) every track's faces for ``dub``; return the per-frame paste."""
        for d in self.tracks:
            audio, warning = dub_audio(self.shot, dub, dub.driving_audio(d.track.actor))
            if warning and d.track.actor in dub.stems:  # The mix's own fit is reported on encode.
                self.emit(ShotEvent("warning", self.shot.id, message=warning))
            audio_16k = audio_io.to_model_audio(audio)
            if d.native is not None:
                d.rest = self._rest_plan(d, audio_16k)
                d.native.plan(audio_16k, self.shot.fps, d.rest)
                d.planned = True
                continue
            self._generate(d, dub, audio_16k)
            d.rest = self._rest(d, audio_16k)
        return self._paste

    def _generate(self, d: _TrackData, dub: Dub, audio_16k: np.ndarray) -> None:
        """A crop generator's new crops of track ``d`` for ``dub`` (memory-mapped)."""
        assert self.crop_generator is not None and d.crops is not None and d.masks is not None
        size = self.crop_generator.resolution
        clip = TrackClip(
            crops=d.crops,
            masks=d.masks,
            frame_indices=d.track.frames.astype(np.int64),
            audio_16k=audio_16k,
            fps=self.shot.fps,
            actor=d.track.actor,
            personal=self._personal_file(d.track.actor),
        )
        out_path = self._scratch / f"track{d.track.track_id}_{dub.name}_gen.npy"
        gen = np.lib.format.open_memmap(out_path, "w+", np.uint8, (len(d.track), size, size, 3))
        done = 0
        report = self._progress(f"generate {dub.name} track {d.track.track_id}")
        for j, crop in enumerate(self.crop_generator.generate(clip)):
            gen[j] = crop
            done = j + 1
            if done % 25 == 0:
                report(done, len(d.track))
        if done != len(d.track):
            raise RuntimeError(f"generator returned {done} crops for {len(d.track)} frames")
        d.generated = gen

    def resting(self) -> dict[str, int]:
        """Frames of the last rendered dub that rested on silence, summed over its tracks
        (:meth:`RestPlan.counts`; zeros when resting is off)."""
        counts = [d.rest.counts() for d in self.tracks if d.rest is not None]
        return {k: sum(c[k] for c in counts) for k in ("source_frames", "rest_frames")}

    def own_mouth(self) -> np.ndarray:
        """(frames,) bool: shot frames where the first dubbed track shows the actor's own mouth
        for the last rendered dub (kept from the source or the rest crop, or left untouched)."""
        out = np.zeros(self.shot.frame_count, bool)
        if self.tracks:
            d = self.tracks[0]
            own = np.zeros(len(d.track), bool)
            if d.rest is not None:
                own |= (d.rest.source + d.rest.rest) >= 0.5
            if d.trusted is not None:
                own |= ~d.trusted
            out[d.track.frames] = own
        return out

    def _rest_plan(self, d: _TrackData, audio_16k: np.ndarray) -> RestPlan | None:
        """Where the dub is silent, how far the mouth rests (see :mod:`lipdub.analysis.rest`)."""
        if not self.shot.settings.rest_on_silence:
            return None
        loud = audio_io.loudness_per_frame(audio_16k, self.shot.frame_count, self.shot.fps)
        return plan_rest(loud[d.track.frames], d.track.landmarks, self.shot.fps)

    def _rest(self, d: _TrackData, audio_16k: np.ndarray) -> RestPlan | None:
        """Rest the mouth of a crop generator's track: the source where the actor's mouth is
        closed, else the rest crop, mixed into the generated crops."""
        if d.generated is None:
            return None
        plan = self._rest_plan(d, audio_16k)
        if plan is not None and plan.rest_frame is not None:
            assert d.crops is not None
            rest_crop = np.asarray(d.crops[plan.rest_frame], np.float32)
            for j in np.flatnonzero(plan.rest > 0):
                g, r = float(plan.generated[j]), float(plan.rest[j])
                mixed = (g * d.generated[j].astype(np.float32) + r * rest_crop) / (g + r)
                d.generated[j] = np.clip(mixed.round(), 0, 255).astype(np.uint8)
        return plan

    def region(
        self, d: _TrackData, i: int, shape: tuple[int, ...]
    ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """Frame box and soft blend mask of track ``d`` at shot frame ``i`` (None: not there)."""
        j = d.track.at(i)
        if j is None:
            return None
        if d.native is not None:
            return d.native.region(j, shape) if d.planned else None
        assert d.matrices is not None and d.masks is not None
        size = d.masks.shape[1]
        matrix = d.matrices[j]
        box = paste_region(matrix, size, shape)
        x0, y0, x1, y1 = box
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        feather_px = self.feather * size / scale_of(matrix)
        return box, self.planner.blend_mask(d.masks[j], matrix, box, feather_px)

    def first_region(
        self, i: int, shape: tuple[int, ...]
    ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """:meth:`region` of the first dubbed track (what QC measures seams and flicker on)."""
        return self.region(self.tracks[0], i, shape) if self.tracks else None

    def _face(
        self, d: _TrackData, i: int, frame: np.ndarray
    ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray] | None:
        """Box, new face pixels and soft mask of track ``d`` at shot frame ``i``."""
        if d.native is not None:
            j = d.track.at(i)
            return None if j is None or not d.planned else d.native.face(j, frame)
        found = self.region(d, i, frame.shape)
        if found is None or d.generated is None:
            return None
        box, mask = found
        j = d.track.at(i)
        assert j is not None and d.matrices is not None
        return box, warp_to_frame(d.generated[j], d.matrices[j], box), mask

    def _paste(self, i: int, frame: np.ndarray) -> np.ndarray:
        """Blend every dubbed track's new face into frame ``i`` of the shot."""
        for d in self.tracks:
            j = d.track.at(i)
            if j is None or (d.trusted is not None and not d.trusted[j]):
                continue  # No face there, or none to trust: the source, untouched.
            weight = 1.0 if d.rest is None else float(d.rest.paste_weight[j])
            if weight <= 0.0:
                continue  # The source's own closed mouth, untouched.
            found = self._face(d, i, frame)
            if found is None:
                continue
            box, face, mask = found
            if weight < 1.0:
                mask = mask * weight
            x0, y0, x1, y1 = box
            if not frame.flags.writeable:
                frame = frame.copy()
            frame[y0:y1, x0:x1] = self.blender.blend(frame[y0:y1, x0:x1], face, mask)
        return frame
