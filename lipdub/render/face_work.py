"""Per-shot face work: analysis, one pass over the source for every dubbed track, per-dub
generation, and the paste-back into each frame.

:class:`FaceWork` analyses the shot once (cached) and drives every face track through the same
steps, whoever serves it: a native generator's track (``exemplar``, frames at the source's
resolution) or a :class:`~lipdub.render.crop_track.CropTrack` for a crop generator (aligned crops
in memory-mapped scratch files). A track the native generator cannot serve (an exemplar bank
too thin for the dub) is left as the source, reported, unless the ``fallback`` setting names
the crop generator that paints it instead (``stylesync``, research-only weights). First pass:
each track takes its frames. Per dub: the resting plan, then the track plans (or generates) its
faces. Encode pass: the blender pastes them where the landmarks can be trusted. Scratch files go
when the shot is done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from lipdub.analysis.records import FaceTrack
from lipdub.analysis.rest import RestPlan, plan_rest
from lipdub.analysis.shot_analysis import analyze_shot
from lipdub.analysis.trust import trusted_frames
from lipdub.config.project import ACTOR_DIR, PERSONAL_FILE
from lipdub.config.shots import Dub
from lipdub.eval.qc import mask_zones
from lipdub.eval.qc_checks import lips_box_or_none
from lipdub.events import ShotEvent
from lipdub.exemplar.track import ClosureReport, ExemplarTrack
from lipdub.media import audio as audio_io
from lipdub.media.read import open_video
from lipdub.media.stream import prefetch
from lipdub.phonetics.recognizer import default_recognizer
from lipdub.phonetics.track import VisemeTrack, viseme_track
from lipdub.plugin_manager import PluginManager
from lipdub.render.crop_track import CropTrack
from lipdub.render.protocols import Generator, NativeGenerator, NativeTrack, TrackContext
from lipdub.render.region_store import RegionStore
from lipdub.render.scratch import remove_scratch, scratch_dir
from lipdub.render.shot_audio import dub_audio
from lipdub.render.shot_job import ShotJob
from lipdub.render.stage_clock import clocked

log = logging.getLogger(__name__)


@dataclass
class _TrackData:
    track: FaceTrack
    work: NativeTrack | CropTrack  # The generator's side of the track: native, or crops.
    rest: RestPlan | None = None  # Generated / rest crop / source weights, per dub.
    planned: bool = False  # The track has been planned (generated) for the current dub.
    trusted: np.ndarray | None = None  # (T,) bool: frames whose landmarks can be pasted on.
    speaking: np.ndarray | None = None  # (T,) bool: the current dub is not silent there.


class FaceWork:
    """Analysis + crops of one shot, reused by every dub of it."""

    def __init__(
        self,
        job: ShotJob,
        plugins: PluginManager,
        generator: Generator | NativeGenerator,
        emit: Callable[[ShotEvent], None],
        fallback: Callable[[], Generator] | None = None,
        timing: dict[str, Any] | None = None,
    ) -> None:
        """Arguments:
        job: the shot job.
        plugins: the plugin manager (stages are built from it).
        generator: the shot's generator, crop-space or native.
        emit: where shot events go.
        fallback: makes the crop generator for tracks a native generator cannot serve.
        timing: where the first pass's time and peak memory go (``timing["first_pass"]``).
        """

        self.job, self.shot, self.emit = job, job.shot, emit
        self.generator = generator
        self._fallback = fallback
        self.crop_generator: Generator | None = (
            None if isinstance(generator, NativeGenerator) else generator
        )
        self.fallbacks: list[str] = []  # Why tracks fell back to the crop generator.
        # Tracks left as the source ({"track", "actor", "reason"}): too thin, no fallback chosen.
        self.not_dubbed: list[dict[str, Any]] = []
        settings = self.shot.settings
        self.analysis_settings = settings.analysis_settings()
        built = ("faces", "landmarker", "tracker", "masks")
        stages = {name: plugins.build(name, settings) for name in built}
        self.planner = stages["masks"]
        self.detector = stages["landmarker"]  # QC fits landmarks to the output with it.
        self.blender = plugins.build("blender", settings)
        self.feather = float(settings.feather_fraction)
        self.warnings: list[str] = []
        self.visemes: VisemeTrack | None = None  # The last rendered dub's (first track's).
        # Shot frames of the current dub where a dubbed face shows the source picture although
        # its dub speaks there, by why (see source_while_speaking).
        self._kept: dict[str, set[int]] = {}
        # Shot frames of the current dub where some track pastes a face (the rest go from decode
        # to encode untouched), and the first track's blend regions as pasted, for QC.
        self._changes = np.zeros(self.shot.frame_count, bool)
        self._regions: RegionStore | None = None
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
            with clocked({} if timing is None else timing, None, "first_pass"):
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
        if self._regions is not None:
            self._regions.close()
            self._regions = None
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
        """Open the native generator's tracks; a track it cannot serve is left as the source
        (:attr:`not_dubbed`) or, with ``fallback = "stylesync"``, falls back: warned either
        way."""
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
            thin = (
                f"shot {self.shot.id}: track {t.track_id} ({t.actor}): the actor's bank is too "
                f"thin for the exemplar path ({reason})"
            )
            fallback = self.shot.settings.fallback
            if fallback == "source":
                self.not_dubbed.append({"track": t.track_id, "actor": t.actor, "reason": reason})
                self.warnings.append(
                    f"{thin}; this track is NOT dubbed: it keeps the source's frames, mouth "
                    f"unchanged (bank more of the actor's footage with `lipdub personalize "
                    f'--bank-only`, or set fallback = "stylesync" to have the research-only '
                    f"lite-v4 model paint it)"
                )
                continue
            message = (
                f"{thin}; this track uses the fallback generator {fallback} (fallback = "
                f'"{fallback}"), whose bundled weights are research-only, non-commercial'
            )
            self.warnings.append(message)
            self.fallbacks.append(message)
        return out

    def _first_pass(self, tracks: list[FaceTrack]) -> list[_TrackData]:
        """One pass over the source: native tracks collect their frames, the others get their
        aligned crops, masks and transforms cut."""
        native = self._native_tracks(tracks)
        source = {n["track"] for n in self.not_dubbed}
        data = []
        for t in tracks:
            if t.track_id in source:
                continue  # Left as the source: never pasted on.
            if t.track_id in native:
                data.append(_TrackData(t, native[t.track_id]))
                continue
            if self.crop_generator is None:
                assert self._fallback is not None, "a native generator needs a fallback"
                self.crop_generator = self._fallback()
            crops = CropTrack(
                t,
                self.crop_generator,
                self.planner,
                self.feather,
                self._scratch,
                self._personal_file(t.actor),
            )
            data.append(_TrackData(t, crops))
        if not data:
            return data
        report = self._progress("crops")
        total = self.shot.frame_count
        with open_video(self.shot.source, conform=self.shot.settings.conform_vfr) as src:
            for i, frame in enumerate(prefetch(src.frames(self.shot.start, self.shot.stop))):
                for d in data:
                    j = d.track.at(i)
                    if j is not None:
                        d.work.add_frame(j, frame)
                if (i + 1) % 25 == 0 or i + 1 == total:
                    report(i + 1, total)
        for d in data:
            d.work.finish()
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
        self.visemes = None
        self._kept = {"no tracked face": set(), "landmarks not trusted": set(), "no face": set()}
        if self._regions is not None:
            self._regions.close()
        self._regions = RegionStore(self._scratch / "regions.bin") if self.tracks else None
        speaking_by_actor: dict[str, np.ndarray] = {}
        # One viseme track per actor: their tracks share a driving audio and a script, and a
        # script that does not fit is warned about once.
        visemes_by_actor: dict[str, VisemeTrack] = {}
        for d in self.tracks:
            audio, warning = dub_audio(self.shot, dub, dub.driving_audio(d.track.actor))
            if warning and d.track.actor in dub.stems:  # The mix's own fit is reported on encode.
                self.emit(ShotEvent("warning", self.shot.id, message=warning))
            audio_16k = audio_io.to_model_audio(audio)
            loud = audio_io.loudness_per_frame(audio_16k, self.shot.frame_count, self.shot.fps)
            speaking_by_actor[d.track.actor] = loud >= audio_io.SILENT_DB
            d.speaking = speaking_by_actor[d.track.actor][d.track.frames]
            d.rest = self._rest_plan(d, audio_16k)
            if d.track.actor not in visemes_by_actor:
                visemes_by_actor[d.track.actor] = self._visemes(dub, d.track.actor, audio_16k)
            visemes = visemes_by_actor[d.track.actor]
            if self.visemes is None:
                self.visemes = visemes  # QC reports the first dubbed track's.
            if isinstance(d.work, CropTrack):
                d.work.label = dub.name
                d.work.progress = self._progress(f"generate {dub.name} track {d.track.track_id}")
            d.work.plan(audio_16k, self.shot.fps, d.rest, visemes)
            d.planned = True
        for actor, speaking in speaking_by_actor.items():  # Holes between an actor's tracks.
            covered = np.zeros(self.shot.frame_count, bool)
            spans = [d.track.frames for d in self.tracks if d.track.actor == actor]
            for frames in spans:
                covered[frames] = True
            first, last = min(int(f[0]) for f in spans), max(int(f[-1]) for f in spans)
            hole = ~covered[first : last + 1] & speaking[first : last + 1]
            self._kept["no tracked face"] |= {first + int(i) for i in np.flatnonzero(hole)}
        self._changes = self._pasted_frames()
        return self._paste

    def _pasted_frames(self) -> np.ndarray:
        """(frames,) bool: shot frames of the planned dub where some track pastes a face (its
        landmarks trusted, its paste weight above 0). Also counts, in the ``kept`` record, the
        frames where a speaking face is left as the source because its landmarks are not
        trusted: those frames never reach :meth:`_paste`."""
        out = np.zeros(self.shot.frame_count, bool)
        for d in self.tracks:
            frames = np.asarray(d.track.frames, np.int64)
            pastes = np.ones(len(frames), bool)
            if d.trusted is not None:
                pastes &= d.trusted
                if d.speaking is not None:
                    untrusted = frames[~d.trusted & d.speaking]
                    self._kept["landmarks not trusted"] |= {int(i) for i in untrusted}
            if d.rest is not None:
                pastes &= d.rest.paste_weight > 0.0
            inside = frames < len(out)
            out[frames[inside & pastes]] = True
        return out

    def changes(self) -> np.ndarray:
        """(frames,) bool: shot frames the last planned dub changes; every other frame is the
        source's, byte for byte, and may go straight from decode to encode."""
        return self._changes

    def _visemes(self, dub: Dub, actor: str, audio_16k: np.ndarray) -> VisemeTrack:
        """The dub's viseme track for ``actor`` (their script when the dub has one)."""
        script = dub.script_for(actor)
        track = viseme_track(
            audio_16k, self.shot.fps, self.shot.frame_count, default_recognizer(), script
        )
        if track.note:
            self.emit(ShotEvent("warning", self.shot.id, message=f"{dub.name}: {track.note}"))
        log.info(
            "%s %s: visemes by %s (%d p/b/m)",
            self.shot.id,
            dub.name,
            track.method,
            len(track.closures),
        )
        return track

    def closure_report(self) -> ClosureReport | None:
        """The first dubbed track's :class:`~lipdub.exemplar.track.ClosureReport` for the last
        rendered dub (None: its generator does not select closures)."""
        if not self.tracks or not isinstance(self.tracks[0].work, ExemplarTrack):
            return None
        return self.tracks[0].work.closures

    def source_while_speaking(self, dub: Dub) -> str | None:
        """After ``dub`` was encoded: the frames where a dubbed actor's face was left as the
        source although the dub speaks there, counted by why, with where; None when there are
        none. (The per-track warnings count only what one check found; this is the total an
        editor sees in the picture.)"""
        total = set().union(*self._kept.values()) if self._kept else set()
        if not total:
            return None
        parts = [f"{len(f)} {why}" for why, f in self._kept.items() if f]
        return (
            f"shot {self.shot.id} dub {dub.name}: {len(total)} frame(s) where the dub speaks "
            f"show the source mouth ({', '.join(parts)}; frames {_ranges(sorted(total))})"
        )

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

    def region(
        self, d: _TrackData, i: int, shape: tuple[int, ...]
    ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """Frame box and soft blend mask of track ``d`` at shot frame ``i`` (None: not there)."""
        j = d.track.at(i)
        return None if j is None or not d.planned else d.work.region(j, shape)

    def first_region(
        self, i: int, shape: tuple[int, ...]
    ) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """The box and the :func:`~lipdub.eval.qc.mask_zones` of the first dubbed track's blend
        mask at shot frame ``i`` (what QC measures seams and flicker on): the paste's, where
        it pasted; computed here only where it did not."""
        if not self.tracks:
            return None
        kept = self._regions.get(i) if self._regions is not None else None
        if kept is not None:
            return kept
        fresh = self.region(self.tracks[0], i, shape)
        return None if fresh is None else (fresh[0], mask_zones(fresh[1]))

    def first_source(self, i: int) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
        """The source's pixels round the first dubbed face at shot frame ``i``, as the paste
        found them (box, (h, w, 3) uint8 RGB), for QC: its blend region and its lips (None:
        the paste kept none there, as where it did not paste)."""
        return self._regions.source(i) if self._regions is not None else None

    def _face(
        self, d: _TrackData, i: int, frame: np.ndarray
    ) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray] | None:
        """Box, new face pixels and soft mask of track ``d`` at shot frame ``i``."""
        j = d.track.at(i)
        return None if j is None or not d.planned else d.work.face(j, frame)

    def _paste(self, i: int, frame: np.ndarray) -> np.ndarray:
        """Blend every dubbed track's new face into frame ``i`` of the shot.

        Safe to call from several threads at once for different frames (the render pipeline
        does): it reads the plans and writes only into ``frame``, the region store (locked) and
        the ``kept`` sets (one ``add`` each)."""
        for n, d in enumerate(self.tracks):
            j = d.track.at(i)
            if j is None:
                continue  # No face there: the source, untouched.
            speaking = d.speaking is not None and bool(d.speaking[j])
            if d.trusted is not None and not d.trusted[j]:
                continue  # No landmarks to trust: the source, untouched (counted when planned).
            weight = 1.0 if d.rest is None else float(d.rest.paste_weight[j])
            if weight <= 0.0:
                continue  # The source's own closed mouth, untouched.
            found = self._face(d, i, frame)
            if found is None:
                if speaking:
                    self._kept["no face"].add(i)
                continue
            box, face, mask = found
            if n == 0 and self._regions is not None:  # QC measures in the same region...
                kept_box = _kept_box(box, d.track.landmarks[j], frame.shape)
                x0, y0, x1, y1 = kept_box  # ... against these source pixels, before the blend.
                zones = mask_zones(mask)
                self._regions.put(i, box, zones, frame[y0:y1, x0:x1], kept_box)
            if weight < 1.0:
                mask = mask * weight
            x0, y0, x1, y1 = box
            if not frame.flags.writeable:
                frame = frame.copy()
            frame[y0:y1, x0:x1] = self.blender.blend(frame[y0:y1, x0:x1], face, mask)
        return frame


def _kept_box(
    box: tuple[int, int, int, int], landmarks: np.ndarray, shape: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """The source box the paste keeps for QC: the blend region's ``box`` and the lips' box
    (:func:`lipdub.eval.qc_checks.lips_box_or_none`, which QC's lip detail measures), both."""
    lips = lips_box_or_none(landmarks, shape)
    if lips is None:
        return box
    return (
        min(box[0], lips[0]),
        min(box[1], lips[1]),
        max(box[2], lips[2]),
        max(box[3], lips[3]),
    )


def _ranges(frames: list[int]) -> str:
    """``3-7, 12, 20-31``: sorted shot frames as runs (at most eight, then "...")."""
    runs: list[tuple[int, int]] = []
    for f in frames:
        if runs and f == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], f)
        else:
            runs.append((f, f))
    text = [f"{a}-{b}" if b > a else f"{a}" for a, b in runs[:8]]
    return ", ".join(text) + (", ..." if len(runs) > 8 else "")
