"""GPU-only checks: bf16 + channels-last engine, torch.compile, reproducibility on CUDA."""

from __future__ import annotations

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


def test_compiled_engine_matches_eager() -> None:
    clip = make_clip(LITE.resolution, frames=6)
    clip.reference = 0
    eager = StyleSyncEngine(seeded_model(LITE), device="cuda", batch_size=3, precision="fp32")
    comp = StyleSyncEngine(
        seeded_model(LITE), device="cuda", batch_size=3, precision="fp32", compile=True
    )
    a = torch.cat(list(eager.generate_float(clip)))
    b = torch.cat(list(comp.generate_float(clip)))
    torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
