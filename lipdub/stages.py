"""The named stages of the pipeline and the record a plugin returns to offer a choice for one.

A stage (``faces``, ``blender``, ``executor``...) is a slot in the pipeline; a *choice* is one
implementation of it, offered by a plugin as a :class:`StageChoice`. The project's config picks a
choice per stage by name (``blender = "feather"``). Each stage's objects satisfy a small protocol
that lives beside the code that calls them (see :data:`STAGES` for where).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StageInfo:
    """What a stage is for and which protocol its objects satisfy."""

    name: str  # Config key and hook suffix, e.g. "blender".
    hook: str  # Hook that offers choices for it, e.g. "lipdub_blenders".
    protocol: str  # Dotted path of the protocol its objects satisfy.
    default: str  # Choice used when nothing else picks one.
    summary: str  # One line for `lipdub plugins list`.


STAGES: dict[str, StageInfo] = {
    s.name: s
    for s in (
        StageInfo(
            "shots",
            "lipdub_shot_detectors",
            "lipdub.analysis.protocols.ShotDetector",
            "scenedetect",
            "splits a source into shots",
        ),
        StageInfo(
            "faces",
            "lipdub_face_detectors",
            "lipdub.analysis.protocols.FaceDetector",
            "blazeface",
            "finds faces (boxes) and describes them for identity",
        ),
        StageInfo(
            "landmarker",
            "lipdub_landmarkers",
            "lipdub.analysis.protocols.Landmarker",
            "mediapipe",
            "fits dlib's 68 landmarks (iBUG 300-W order) to each face box",
        ),
        StageInfo(
            "tracker",
            "lipdub_trackers",
            "lipdub.analysis.protocols.Tracker",
            "iou-appearance",
            "links faces across frames into tracks",
        ),
        StageInfo(
            "masks",
            "lipdub_mask_planners",
            "lipdub.analysis.protocols.MaskPlanner",
            "u-shape",
            "plans the lower-face mask per frame",
        ),
        StageInfo(
            "generator",
            "lipdub_generators",
            "lipdub.render.protocols.Generator",
            "exemplar",
            "generates the new lower face for a track",
        ),
        StageInfo(
            "blender",
            "lipdub_blenders",
            "lipdub.render.protocols.Blender",
            "feather",
            "pastes the generated face back into the frame",
        ),
        StageInfo(
            "executor",
            "lipdub_executors",
            "lipdub.render.protocols.Executor",
            "local",
            "runs shot jobs (in process, or on a cluster)",
        ),
        StageInfo(
            "personalizer",
            "lipdub_personalizers",
            "lipdub.train.protocols.Personalizer",
            "stylesync-delta",
            "fine-tunes the generator on one actor",
        ),
    )
}


@dataclass(frozen=True)
class StageChoice:
    """One implementation of a stage, as returned by a plugin's hook.

    ``options`` declares every option the choice takes, with its default. ``factory(options)``
    builds the object from exactly those keys: the defaults, overridden by the stage's block
    (``stage_options.<stage>``) and by the shared render settings of the same names (``device``,
    ``weights``...); the plugin manager refuses any other key. So a factory never reads config
    files itself, and a misspelt option never falls back to a default unnoticed.
    """

    name: str  # Name the config picks it by, e.g. "feather".
    factory: Callable[[Mapping[str, Any]], Any]  # Builds the stage object from its options.
    summary: str = ""  # One line for `lipdub plugins list`.
    options: Mapping[str, Any] = field(default_factory=dict)  # Every option it takes -> default.
    # Terms of the models it loads, for `lipdub plugins list` ("" = no model: lipdub's own code).
    licence: str = ""
