"""The hooks a lipdub plugin can implement (pluggy project name ``lipdub``).

Stage hooks return a list of :class:`~lipdub.stages.StageChoice` records: named implementations
of one stage. The plugin manager refuses two choices with one name, and the project's config picks
one per stage. ``lipdub_shot_event`` is the only hook that is *called* with data: every plugin that
implements it sees each shot event (started, progress, finished, failed), e.g. to report to a farm.

Built-in plugins in ``lipdub.plugins`` implement these same hooks; a third party does it in a
package with an entry point in the ``lipdub`` group, or in a ``lipdub_plugins.py`` beside the
project's lipdub.toml. See docs/plugins.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from lipdub.events import ShotEvent
    from lipdub.stages import StageChoice

PROJECT = "lipdub"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def lipdub_shot_detectors() -> list[StageChoice]:
    """Offer shot (cut) detectors: objects with ``detect(video, start, stop) -> list[int]``.

    The returned frame numbers are the first frames of new shots inside ``[start, stop)``.
    """
    raise NotImplementedError  # pluggy calls the implementations, never a spec's body


@hookspec
def lipdub_face_detectors() -> list[StageChoice]:
    """Offer face detectors: objects that find faces in an RGB frame and describe them.

    Their landmarks come from the ``landmarker`` stage (:func:`lipdub_landmarkers`); a detector
    may still offer ``landmarks`` of its own (the ``dlib68`` landmarker uses dlib's).

    See :class:`lipdub.analysis.protocols.FaceDetector` for the methods they provide.
    """
    raise NotImplementedError  # pluggy calls the implementations, never a spec's body


@hookspec
def lipdub_landmarkers() -> list[StageChoice]:
    """Offer landmarkers: objects that fit 68 landmarks (iBUG 300-W order) in each face box.

    See :class:`lipdub.analysis.protocols.Landmarker`. A choice whose model's terms restrict its
    use says so in its ``StageChoice.licence`` (shown by `lipdub plugins list`).
    """
    raise NotImplementedError  # pluggy calls the implementations, never a spec's body


@hookspec
def lipdub_trackers() -> list[StageChoice]:
    """Offer trackers: objects that link per-frame faces into tracks and smooth their landmarks."""
    raise NotImplementedError  # pluggy calls the implementations, never a spec's body


@hookspec
def lipdub_mask_planners() -> list[StageChoice]:
    """Offer mask planners: objects that turn aligned landmarks into the lower-face mask."""
    raise NotImplementedError  # pluggy calls the implementations, never a spec's body


@hookspec
def lipdub_generators() -> list[StageChoice]:
    """Offer generators: objects that turn a face track plus dub audio into new face crops.

    See :class:`lipdub.render.protocols.Generator`. ``passthrough`` (returns the input crops) is
    built in for testing the rest of the pipeline.
    """
    raise NotImplementedError  # pluggy calls the implementations, never a spec's body


@hookspec
def lipdub_blenders() -> list[StageChoice]:
    """Offer blenders: objects that paste a generated face back into the full frame under a mask."""
    raise NotImplementedError  # pluggy calls the implementations, never a spec's body


@hookspec
def lipdub_executors() -> list[StageChoice]:
    """Offer executors: objects that run a list of shot jobs (in process, on Ray, on a farm)."""
    raise NotImplementedError  # pluggy calls the implementations, never a spec's body


@hookspec
def lipdub_personalizers() -> list[StageChoice]:
    """Offer personalizers: objects that fine-tune the generator on one actor's own footage."""
    raise NotImplementedError  # pluggy calls the implementations, never a spec's body


@hookspec
def lipdub_shot_event(event: ShotEvent) -> None:
    """Receive every shot event (``started``, ``progress``, ``finished``, ``failed``).

    Called in the process that runs the CLI, in order, for every shot job. Return nothing; an
    exception here is logged and does not stop the render.
    """
