"""GPU-only checks: bf16 + channels-last engine, torch.compile, reproducibility on CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lipdub.model.config import FULL, LITE
from lipdub.model.engine import StyleSyncEngine
from tests.model.model_helpers import make_clip, seeded_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("cfg", [LITE, FULL], ids=["lite", "full"])
def test_bf16_engine_matches_fp32_roughly_and_repeats(cfg) -> None:
    clip = make_clip(cfg.resolution, frames=9)
    clip.reference = 0
    model = seeded_model(cfg)
    bf16 = StyleSyncEngine(model, device="cuda", batch_size=4, precision="bf16")
    a = torch.cat(list(bf16.generate_float(clip)))
    b = torch.cat(list(bf16.generate_float(clip)))
    assert torch.equal(a, b)
    fp32 = StyleSyncEngine(seeded_model(cfg), device="cuda", batch_size=4, precision="fp32")
    c = torch.cat(list(fp32.generate_float(clip)))
    rel = (a - c).norm() / c.norm()
    assert rel < 0.05


def test_compiled_engine_matches_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same function, compiled or not, in true fp32: TF32 convolutions (cuDNN's default) would
    differ by ~1e-2 through the network's depth whichever way the graph is fused."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    clip = make_clip(LITE.resolution, frames=6)
    clip.reference = 0
    eager = StyleSyncEngine(seeded_model(LITE), device="cuda", batch_size=3, precision="fp32")
    comp = StyleSyncEngine(
        seeded_model(LITE), device="cuda", batch_size=3, precision="fp32", compile=True
    )
    a = torch.cat(list(eager.generate_float(clip)))
    b = torch.cat(list(comp.generate_float(clip)))
    torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


def test_the_stylesync_choice_runs_the_shipped_weights_on_cuda_as_the_settings_ask() -> None:
    """The route a render takes: the shared settings (device, precision, weights) are the
    stylesync choice's options; on CUDA the shipped weights give (S, S, 3) uint8 crops in
    either precision, and bf16 stays near fp32 (bf16 operands: relative error ~1e-2)."""
    from lipdub.plugins.generator_stylesync import lipdub_generators

    (choice,) = [c for c in lipdub_generators() if c.name == "stylesync"]
    floats = {}
    for precision in ("bf16", "fp32"):
        options = {**choice.options, "device": "cuda", "precision": precision}
        engine = choice.factory({**options, "weights": "lite-v4", "batch_size": 8})
        assert engine.precision == precision and engine.device.type == "cuda"
        clip = make_clip(engine.resolution, frames=12)
        clip.reference = 0
        crops = list(engine.generate(clip))
        size = engine.resolution
        assert len(crops) == 12 and all(c.shape == (size, size, 3) for c in crops)
        assert all(c.dtype == np.uint8 for c in crops)
        floats[precision] = torch.cat(list(engine.generate_float(clip))).float().cpu()
    rel = (floats["bf16"] - floats["fp32"]).norm() / floats["fp32"].norm()
    assert rel < 0.05
