"""What the ``personalizer`` stage asks of its plugins (hook ``lipdub_personalizers``).

A plugin's hook returns :class:`~lipdub.stages.StageChoice` records; ``choice.factory(options)``
builds a :class:`Personalizer` from the stage's options (general checkpoint, architecture,
device and the method's own knobs, already resolved). ``lipdub personalize --actor NAME`` then
calls :meth:`Personalizer.personalize` once, with the actor's record from lipdub.toml, the project
root and the run's budget, and gets back the path of the actor's personalization file.

The contract every personalizer keeps:

- the result is written to ``<project root>/actors/<name>/personal.safetensors`` (+ the JSON
  beside it, see :mod:`lipdub.model.personal`), which is where the renderer looks for it
  (:data:`lipdub.config.project.PERSONAL_FILE`); a card ``actors/<name>/CARD.md`` says what was
  done (footage, steps, time, device, metrics before / after);
- a result that does not beat the general model on the actor's held-out frames is not adopted
  (unless ``keep_worse``): it goes to ``personal.rejected.safetensors`` (+ JSON, and
  ``CARD.rejected.md``), the adopted file, if any, stays as it was, and that path is returned;
- it only ever *adds* to the general model (ΔW's MLP and parameter offsets ΔP), never copies it;
- a run stopped by its budget (or killed) can be continued: ``resume=True`` picks up the last
  saved state, ``resume=False`` starts again;
- progress is reported through the ``progress`` callback (never printed): the CLI draws it as a
  bar or writes it as JSON lines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from lipdub.config.project import ActorConfig

#: Run options every personalizer understands (others are the stage's own).
RUN_OPTIONS = ("steps", "minutes", "device", "resume", "keep_worse")


@dataclass(frozen=True)
class PersonalizeProgress:
    """One progress report: after a step, or after a held-out evaluation."""

    step: int  # Steps done so far (over all resumed runs).
    total: int | None  # Step budget, or None when only a time budget is set.
    losses: Mapping[str, float] = field(default_factory=dict)  # Last step's loss terms.
    held_out: Mapping[str, float] | None = None  # Held-out metrics, when just measured.
    elapsed_s: float = 0.0  # Wall time of this run so far.
    phase: str = "train"  # "prepare", "baseline", "train" or "done".

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for ``--json`` output and logs)."""
        return {
            "event": "progress",
            "phase": self.phase,
            "step": self.step,
            "total": self.total,
            "losses": {k: round(v, 5) for k, v in self.losses.items()},
            "held_out": None
            if self.held_out is None
            else {k: round(v, 5) for k, v in self.held_out.items()},
            "elapsed_s": round(self.elapsed_s, 2),
        }


ProgressFn = Callable[[PersonalizeProgress], None]


@runtime_checkable
class Personalizer(Protocol):
    """Fine-tunes the generator on one actor's own footage and stores the result per actor."""

    def personalize(
        self,
        actor: ActorConfig,
        project_root: Path,
        options: Mapping[str, Any],
        progress: ProgressFn | None = None,
    ) -> Path:
        """Personalize the generator for ``actor``; return the personalization file written.

        Arguments:
            actor: the actor's record (name and ``footage``: clips of them speaking with their
                own voice; a clip without an audio stream needs a ``.wav`` of the same stem
                beside it).
            project_root: the folder holding lipdub.toml; results go under ``actors/<name>/``
                and caches under ``.lipdub/``.
            options: the run's options, any of :data:`RUN_OPTIONS` (``steps``: total step
                budget over resumes; ``minutes``: wall-time budget of this run; ``device``;
                ``resume``; ``keep_worse``: adopt a result that does not beat the general
                model), over the stage's options.
            progress: called with a :class:`PersonalizeProgress` after every step.

        Returns:
            ``project_root / "actors" / name / "personal.safetensors"``, or
            ``personal.rejected.safetensors`` beside it when the result was kept aside.

        Raises:
            lipdub.errors.ConfigError: no usable footage, or a bad option.
            lipdub.errors.MediaError: footage that cannot be read.
            lipdub.errors.WeightsError: the general checkpoint cannot be loaded.
        """
        ...
