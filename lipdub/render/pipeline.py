"""The per-shot render: analysis → generation per face track → paste back → encode with the dub.

Memory stays bounded by the crop size, not the shot length: the source is streamed twice (once to
cut out aligned face crops into a memory-mapped scratch file, once to paste generated crops back
and encode), and the generator reads the crops in batches. The second stream is a pipeline
(:mod:`lipdub.render.frame_pass`). The job report's ``timing`` says where the time went, stage by
stage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from lipdub.config.shots import Dub, Shot
from lipdub.events import ShotEvent
from lipdub.media import audio as audio_io
from lipdub.media.atomic import atomic_output
from lipdub.media.read import open_video
from lipdub.media.write import VideoWriter, codec_for
from lipdub.plugin_manager import PluginManager
from lipdub.render.crop_track import CropTrack
from lipdub.render.face_work import FaceWork
from lipdub.render.frame_pass import encode_frames
from lipdub.render.protocols import UnchangedPicture
from lipdub.render.shot_audio import dub_audio, output_audio
from lipdub.render.shot_job import ShotJob
from lipdub.render.stage_clock import clocked as _clocked
from lipdub.render.stage_clock import peak_rss_mb

log = logging.getLogger(__name__)

#: Emit a progress event every this many frames.
PROGRESS_EVERY = 25
#: Generator for the tracks whose bank is too thin for the exemplar path.
FALLBACK_GENERATOR = "stylesync"


def timecode_of(shot: Shot) -> str | None:
    """Start timecode of the shot's first frame (source start TC + in point), if it has one."""
    return shot.timecode_at(shot.start) if shot.start_timecode else None


def render_shot(job: ShotJob, emit: Callable[[ShotEvent], None]) -> dict[str, Any]:
    """Render every dub of the job's shot that is missing (or all, with force)."""
    shot = job.shot
    plugins = PluginManager(job.project_root)
    gen_name = shot.settings.stage("generator")
    generator = plugins.build("generator", shot.settings)
    report: dict[str, Any] = {"generator": gen_name, "warnings": list(shot.notes)}
    timing: dict[str, Any] = report.setdefault("timing", {})
    todo = [d for d in shot.dubs if job.force or not d.output.exists()]
    if isinstance(generator, UnchangedPicture):
        log.warning("shot %s: generator 'passthrough' — lips are NOT changed", shot.id)
        report["warnings"].append("passthrough generator: the picture is the source, unchanged")
        shot_warnings = list(report["warnings"])  # Each dub's QC: these and its own, no other's.
        for dub in todo:
            audio = _qc_audio(shot, dub, None)
            thumb: list[np.ndarray] = []
            warnings = shot_warnings + _encode_dub(
                shot, dub, emit, None, None, timing, _before_frame(shot, audio), thumb
            )
            _keep_warnings(report, warnings)
            with _clocked(timing, dub.name, "qc"):
                _qc(shot, dub, gen_name, None, warnings, report, emit, audio, thumb)
        return report

    def fallback() -> Any:
        """The crop generator for tracks the chosen (native) generator cannot serve: the shared
        settings it takes (device, weights...), not the chosen generator's block."""
        return plugins.build("generator", shot.settings, FALLBACK_GENERATOR)

    with _clocked(timing, None, "analysis"):
        work = FaceWork(job, plugins, generator, emit, fallback, timing)
    with work:
        report["warnings"] += work.warnings
        report["tracks"] = work.track_summary()
        shot_warnings = list(report["warnings"])  # Each dub's QC: these and its own, no other's.
        for dub in todo:
            with _clocked(timing, dub.name, "generation"):
                frame_fn = work.render_dub(dub)
            audio = _qc_audio(shot, dub, work)
            thumb = []
            warnings = shot_warnings + _encode_dub(
                shot, dub, emit, frame_fn, work.changes(), timing, _before_frame(shot, audio), thumb
            )
            kept = work.source_while_speaking(dub)
            if kept is not None:  # Counted while pasting: the total an editor will see.
                emit(ShotEvent("warning", shot.id, message=kept))
                warnings.append(kept)
            _keep_warnings(report, warnings)
            with _clocked(timing, dub.name, "qc"):
                _qc(shot, dub, gen_name, work, warnings, report, emit, audio, thumb)
    return report


def _keep_warnings(report: dict[str, Any], warnings: list[str]) -> None:
    """Add to the job report (the ``finished`` event) the warnings it does not hold yet: a
    dub's fit and the reader's notes were emitted as events while encoding, and belong in the
    summary a farm keeps as much as QC's do."""
    report["warnings"] += [w for w in dict.fromkeys(warnings) if w not in report["warnings"]]


def _qc_audio(shot: Shot, dub: Dub, work: FaceWork | None) -> np.ndarray | None:
    """The 16 kHz audio QC measures the dub by (the first dubbed actor's driving audio, else
    the dub's), None when the shot has QC off."""
    if not shot.settings.qc:
        return None
    tracks = [d.track for d in work.tracks] if work is not None else []
    driving = (
        dub.driving_audio(tracks[0].actor)
        if tracks
        else (dub.audio or dub.mix or next(iter(dub.stems.values())))
    )
    audio, _ = dub_audio(shot, dub, driving)
    return audio_io.to_model_audio(audio)


def _before_frame(shot: Shot, audio_16k: np.ndarray | None) -> int | None:
    """The shot frame whose source QC shows as "before" (None: no QC), kept while encoding so
    that QC need not decode the source for it."""
    if audio_16k is None:
        return None
    from lipdub.eval.qc import before_frame

    return before_frame(audio_16k, shot.frame_count, shot.fps)


def _qc(
    shot: Shot,
    dub: Dub,
    generator: str,
    work: FaceWork | None,
    warnings: list[str],
    report: dict[str, Any],
    emit: Callable[[ShotEvent], None],
    audio_16k: np.ndarray | None,
    before_thumb: list[np.ndarray],
) -> None:
    """Measure the written output for the QC report (numbers also go into the job report).

    What QC finds wrong is a warning like any other: emitted as an event, and added to the job
    report (the ``finished`` event carries it), not only written into the report page.

    ``work`` is the shot's :class:`~lipdub.render.face_work.FaceWork` (None for passthrough): its
    dubbed tracks, landmark detector, blend regions and the source pixels the paste kept.
    ``audio_16k`` is :func:`_qc_audio`'s (None: QC is off), ``before_thumb`` the source's
    thumbnail the encode pass kept (empty: none).
    """
    if audio_16k is None:
        return
    from lipdub.eval.qc import default_syncnet, measure_dub

    tracks = [d.track for d in work.tracks] if work is not None else []
    qc = measure_dub(
        shot=shot,
        dub=dub,
        generator=measured_generator(generator, work),
        audio_16k=audio_16k,
        tracks=tracks,
        detector=work.detector if work is not None else None,
        warnings=sorted(set(warnings), key=warnings.index),
        region_fn=work.first_region if work is not None else None,
        syncnet=default_syncnet() if tracks and shot.settings.qc_syncnet else None,
        resting=work.resting() if work is not None else None,
        own_mouth=work.own_mouth() if work is not None else None,
        visemes=work.visemes if work is not None else None,
        bank_closed=_bank_closed(work),
        not_dubbed=work.not_dubbed if work is not None else None,
        kept_source=work.first_source if work is not None else None,
        before_thumb=before_thumb[0] if before_thumb else None,
    )
    for w in qc.warnings:
        if w not in warnings:
            emit(ShotEvent("warning", shot.id, message=f"{dub.name}: {w}"))
            report["warnings"].append(f"{dub.name}: {w}")
    report.setdefault("qc", {})[dub.name] = {
        "silent_opening": qc.silent_opening,
        "loud_opening": qc.loud_opening,
        "seam_ratio": qc.seam_ratio,
        "flicker_ratio": qc.flicker_ratio,
        "detail_ratio": qc.detail_ratio,
        "sync_r": qc.sync_r,
        "av_offset": qc.av_offset,
        "lse_c": qc.lse_c,
        "bilabials_closed": qc.bilabials.get("share"),
        "visemes_by": qc.bilabials.get("method"),
        **qc.resting,
    }


def _bank_closed(work: FaceWork | None) -> int | None:
    """Closed-lip frames in the first dubbed track's bank (None: not an exemplar track)."""
    report = work.closure_report() if work is not None else None
    return None if report is None else report.bank_closed


def measured_generator(chosen: str, work: FaceWork | None) -> str:
    """The generator that made the face QC measures (the first dubbed track): the fallback's
    name where that track fell back from the chosen native generator to crops."""
    if work is None or not work.tracks or not work.fallbacks:
        return chosen
    return FALLBACK_GENERATOR if isinstance(work.tracks[0].work, CropTrack) else chosen


def _encode_dub(
    shot: Shot,
    dub: Dub,
    emit: Callable[[ShotEvent], None],
    frame_fn: Callable[[int, np.ndarray], np.ndarray] | None,
    changes: np.ndarray | None,
    timing: dict[str, Any],
    thumb_at: int | None = None,
    thumb: list[np.ndarray] | None = None,
) -> list[str]:
    """Stream the shot through ``frame_fn`` (None: unchanged) into the dub's output file;
    ``changes`` marks the frames ``frame_fn`` changes (None: any may). The stages' times go into
    ``timing[dub.name]["encode_pass"]``. The QC thumbnail of source frame ``thumb_at`` (as
    decoded, before any paste) is appended to ``thumb``."""
    audio, warnings = output_audio(shot, dub)
    for w in warnings:
        emit(ShotEvent("warning", shot.id, message=w))
    codec = codec_for(shot.settings.codec, dub.output)
    with open_video(shot.source, conform=shot.settings.conform_vfr) as src:
        info = src.info
        for w in info.warnings:  # What the reader conformed, filled or turned upright.
            emit(ShotEvent("warning", shot.id, message=w))
            warnings.append(w)
        with (
            atomic_output(dub.output) as tmp,
            VideoWriter(
                tmp, info.width, info.height, shot.fps, codec, timecode_of(shot), audio
            ) as writer,
        ):

            def progress(i: int) -> None:
                if (i + 1) % PROGRESS_EVERY == 0 or i + 1 == shot.frame_count:
                    emit(
                        ShotEvent(
                            "progress",
                            shot.id,
                            stage=f"encode {dub.name}",
                            done=i + 1,
                            total=shot.frame_count,
                        )
                    )

            frames = src.frames(shot.start, shot.stop)
            if thumb_at is not None and thumb is not None:
                frames = _keeping_thumbnail(frames, thumb_at, thumb)
            times = encode_frames(
                frames,
                writer.write_prepared,
                frame_fn,
                changes,
                progress,
                frame_bytes=info.width * info.height * 3,
                prepare=writer.prepare,
            )
    timing.setdefault(dub.name, {})["encode_pass"] = {
        **times.record(),
        "peak_rss_mb": peak_rss_mb(),
    }
    return warnings


def _keeping_thumbnail(
    frames: Iterator[np.ndarray], at: int, kept: list[np.ndarray]
) -> Iterator[np.ndarray]:
    """``frames`` as they come, with QC's thumbnail of frame ``at`` appended to ``kept`` on the
    way (in the decode thread, before any paste writes into the frame)."""
    from lipdub.eval.qc import thumbnail

    for i, frame in enumerate(frames):
        if i == at:
            kept.append(thumbnail(frame))
        yield frame
