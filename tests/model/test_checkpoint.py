"""Checkpoints: bit-exact round trip, tamper and config-mismatch refusal, manifest, plugin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lipdub.errors import WeightsError
from lipdub.model.checkpoint import (
    audio_scale_for,
    load_checkpoint,
    load_manifest,
    save_checkpoint,
    sha256_file,
)
from lipdub.model.config import FULL, LITE
from lipdub.model.personal import apply_personal, save_personal
from lipdub.plugins.generator_stylesync import create, lipdub_generators
from lipdub.render.protocols import Generator
from tests.model.model_helpers import make_clip, seeded_model

PROV = {"source": "unit test", "licence": "Apache-2.0"}


@pytest.fixture
def saved(tmp_path: Path):
    model = seeded_model(LITE)
    path = tmp_path / "g.safetensors"
    record = save_checkpoint(model, path, PROV)
    return model, path, record


def test_round_trip_is_bit_exact(saved) -> None:
    model, path, record = saved
    loaded, rec = load_checkpoint(
        path, expected_sha256=record["weights_sha256"], expected_config=LITE
    )
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert rec["resolution"] == 128 and rec["architecture"] == "stylesync"
    assert rec["audio"]["sample_rate"] == 16000 and rec["provenance"] == PROV


def test_tampered_file_refused(saved) -> None:
    _, path, record = saved
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # Flip one bit of the last tensor.
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256 mismatch") as e:
        load_checkpoint(path, expected_sha256=record["weights_sha256"])
    assert "\n" not in str(e.value)
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load_checkpoint(path)  # The JSON's own hash catches it too.


def test_config_mismatch_refused(saved) -> None:
    _, path, _ = saved
    with pytest.raises(WeightsError, match="config mismatch"):
        load_checkpoint(path, expected_config=FULL)
    cpath = path.with_suffix(".json")
    record = json.loads(cpath.read_text())
    record["config"]["channel_base"] = 4096  # Edited config, weights unchanged.
    record["config_sha256"] = LITE.digest()
    cpath.write_text(json.dumps(record))
    with pytest.raises(WeightsError, match="config mismatch") as e:
        load_checkpoint(path)
    assert "safetensors metadata" in str(e.value)


def test_missing_weights_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(WeightsError, match=str(missing)):
        create({"weights": str(missing), "device": "cpu"})


def write_manifest(
    tmp_path: Path, path: Path, sha: str, default: bool = True, extra: str = ""
) -> Path:
    manifest = tmp_path / "manifest.toml"
    head = 'default_generator = "test-lite"\n' if default else ""
    manifest.write_text(
        head + "[[checkpoint]]\n"
        f'name = "test-lite"\nfile = "{path.name}"\nconfig = "{path.with_suffix(".json").name}"\n'
        f'sha256 = "{sha}"\nprovenance = "unit test"\nlicence = "Apache-2.0"\n' + extra
    )
    return manifest


def test_audio_scale_comes_from_the_manifest_entry_unless_given(saved, tmp_path: Path) -> None:
    _, path, record = saved
    manifest = write_manifest(tmp_path, path, record["weights_sha256"], extra="audio_scale = 2.5\n")
    assert audio_scale_for(None, manifest) == 2.5
    assert audio_scale_for("test-lite", manifest) == 2.5
    assert audio_scale_for(str(path), manifest) == 1.0  # A bare file carries no tuned scale.
    opts = {"manifest": manifest, "device": "cpu"}
    assert create({**opts, "weights": None}).audio_scale == 2.5
    assert create({**opts, "weights": None, "audio_scale": 1.5}).audio_scale == 1.5
    assert create({"weights": "random-init", "model": "lite", "device": "cpu"}).audio_scale == 1
    plain = write_manifest(tmp_path, path, record["weights_sha256"])
    assert create({**opts, "manifest": plain, "weights": None}).audio_scale == 1.0
    for bad in ("0", "-1", "true", '"2"'):
        write_manifest(tmp_path, path, record["weights_sha256"], extra=f"audio_scale = {bad}\n")
        with pytest.raises(WeightsError, match="audio_scale must be a number > 0"):
            load_manifest(manifest)


def test_plugin_loads_by_manifest_name_and_refuses_wrong_sha(saved, tmp_path: Path) -> None:
    _, path, record = saved
    manifest = write_manifest(tmp_path, path, record["weights_sha256"])
    assert load_manifest(manifest).entries["test-lite"].file == path
    gen = create({"weights": None, "manifest": manifest, "device": "cpu", "batch_size": 2})
    assert isinstance(gen, Generator) and gen.resolution == 128
    bad = write_manifest(tmp_path, path, "0" * 64)
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        create({"weights": "test-lite", "manifest": bad, "device": "cpu"})
    with pytest.raises(WeightsError, match="no generator checkpoint named"):
        create({"weights": "other", "manifest": manifest, "device": "cpu"})
    bare = write_manifest(tmp_path, path, record["weights_sha256"], default=False)
    with pytest.raises(WeightsError, match=r"no default_generator.*'random-init'"):
        create({"weights": None, "manifest": bare, "device": "cpu"})


def test_bundled_manifest_parses_and_default_is_explained() -> None:
    manifest = load_manifest()
    if manifest.default_generator is None:
        with pytest.raises(WeightsError, match="random-init"):
            create({"weights": None, "device": "cpu"})
    else:  # The default loads, hash-checked, and is not labelled untrained.
        gen = create({"weights": None, "device": "cpu"})
        assert manifest.default_generator in gen.label and "UNTRAINED" not in gen.label
    if manifest.default_syncnet is not None:
        assert manifest.entries[manifest.default_syncnet].kind == "syncnet"


def test_manifest_default_syncnet_must_name_a_syncnet(saved, tmp_path: Path) -> None:
    _, path, record = saved
    manifest = write_manifest(tmp_path, path, record["weights_sha256"])
    text = manifest.read_text()
    manifest.write_text('default_syncnet = "test-lite"\n' + text)  # test-lite is a generator.
    with pytest.raises(WeightsError, match="default_syncnet 'test-lite' is not a listed syncnet"):
        load_manifest(manifest)


def test_random_init_is_labelled_and_seeded() -> None:
    (choice,) = lipdub_generators()
    assert choice.name == "stylesync" and {
        "device",
        "weights",
        "batch_size",
        "compile",
        "model",
        "personal",
    } <= set(choice.options)
    a = create({"weights": "random-init", "model": "lite", "device": "cpu"})
    b = create({"weights": "random-init", "model": "lite", "device": "cpu"})
    assert "UNTRAINED" in a.label
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_personal_file_round_trip(saved, tmp_path: Path) -> None:
    base, path, record = saved
    tuned = seeded_model(LITE)
    with torch.no_grad():
        tuned.delta_w.fc1.weight.normal_()
        tuned.synthesis.torgbs[-1].bias.add_(0.5)  # ΔP on one parameter.
    personal = tmp_path / "anna.safetensors"
    save_personal(tuned, base.state_dict(), personal, actor="anna")
    gen = create({"weights": str(path), "personal": str(personal), "device": "cpu"})
    a, b = gen.model.state_dict(), tuned.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    clip = make_clip(128, frames=2)
    assert len(list(gen.generate(clip))) == 2
    other = seeded_model(LITE)
    with torch.no_grad():
        other.synthesis.torgbs[0].bias.add_(0.01)  # Other general weights, same architecture.
    with pytest.raises(WeightsError, match="other general weights"):
        apply_personal(other, personal)
    data = bytearray(personal.read_bytes())
    data[-1] ^= 0x01
    personal.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        apply_personal(seeded_model(LITE), personal)
    assert sha256_file(path) == record["weights_sha256"]


def test_a_personal_file_is_verified_like_any_checkpoint(saved, tmp_path: Path) -> None:
    """apply_personal goes through verified_record: its format, its SHA-256 and the generator
    config it was made for are checked before a tensor is read; the base digest after."""
    base, _, _ = saved
    personal = tmp_path / "anna.safetensors"
    save_personal(seeded_model(LITE), base.state_dict(), personal, actor="anna")
    with pytest.raises(WeightsError, match="made for another generator config"):
        apply_personal(seeded_model(FULL), personal)
    record_path = personal.with_suffix(".json")
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "format": "lipdub-personal/0"}))
    with pytest.raises(
        WeightsError, match="'lipdub-personal/0' checkpoint, not 'lipdub-personal/1'"
    ):
        apply_personal(seeded_model(LITE), personal)
    record_path.unlink()
    with pytest.raises(WeightsError, match=r"its record anna\.json is missing"):
        apply_personal(seeded_model(LITE), personal)
