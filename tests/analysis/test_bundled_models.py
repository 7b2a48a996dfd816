"""The analysis's bundled TFLite models (the BlazeFace detector and the face mesh) load from a copy
of weights/ and are refused, before the runtime reads them, when one byte of the file differs."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lipdub.analysis import blazeface, mesh
from lipdub.errors import WeightsError
from lipdub.manifest import MANIFEST_PATH, load_manifest

#: Each model's manifest name, its loader, and the name the loaded stage gives itself.
MODELS: dict[str, tuple[Callable[..., Any], str]] = {
    blazeface.MODEL_NAME: (blazeface.load_blazeface, "blazeface"),
    mesh.MODEL_NAME: (mesh.load_mesh_landmarker, "mediapipe-mesh@"),
}


def _copy_weights(tmp_path: Path, name: str) -> Path:
    """The manifest and the model's files copied to ``tmp_path``; returns the manifest."""
    entry = load_manifest().entries[name]
    for path in (MANIFEST_PATH, entry.file, entry.config):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / MANIFEST_PATH.name


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_bundled_model_loads_from_a_copy_of_the_weights(tmp_path: Path, name: str):
    load, stage_name = MODELS[name]
    assert load(manifest=_copy_weights(tmp_path, name)).name.startswith(stage_name)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_tampered_model_file_is_refused(tmp_path: Path, name: str):
    load, _ = MODELS[name]
    manifest = _copy_weights(tmp_path, name)  # Checked once per process and file: a fresh path.
    model = tmp_path / load_manifest().entries[name].file.name
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF  # One flipped byte in the weights.
    model.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load(manifest=manifest)
