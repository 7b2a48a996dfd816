"""QC names the generator that made the measured face (issue 27: it said `exemplar` for a
track that had fallen back to `stylesync`)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from lipdub.render.crop_track import CropTrack
from lipdub.render.pipeline import FALLBACK_GENERATOR, measured_generator


def _work(native_first: bool, fell_back: bool) -> Any:
    crops = CropTrack.__new__(CropTrack)  # Only its type matters here.
    native = object()
    first = native if native_first else crops
    fallbacks = ["track 0 fell back"] if fell_back else []
    return SimpleNamespace(tracks=[SimpleNamespace(work=first)], fallbacks=fallbacks)


def test_a_fallen_back_track_is_reported_as_the_fallback() -> None:
    assert measured_generator("exemplar", _work(native_first=False, fell_back=True)) == (
        FALLBACK_GENERATOR
    )


def test_otherwise_the_chosen_generator_is_reported() -> None:
    assert measured_generator("exemplar", _work(native_first=True, fell_back=False)) == "exemplar"
    # Another track fell back, the measured one did not.
    assert measured_generator("exemplar", _work(native_first=True, fell_back=True)) == "exemplar"
    # A crop generator chosen outright is no fallback.
    assert measured_generator("stylesync", _work(native_first=False, fell_back=False)) == (
        "stylesync"
    )
    assert measured_generator("passthrough", None) == "passthrough"
