"""Generator shapes, Eq. 1 masking and its reference gate, the ΔW = 0 identity and the audio
scale."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest
import torch

from lipdub.errors import ConfigError
from lipdub.model.config import FULL, LITE, GeneratorConfig
from lipdub.model.mel import MelFrontend
from tests.model.model_helpers import seeded_model


def inputs(cfg: GeneratorConfig, n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    s = cfg.resolution
    target = torch.rand(n, 3, s, s, generator=g) * 2 - 1
    reference = torch.rand(n, 3, s, s, generator=g) * 2 - 1
    mask = torch.zeros(n, 1, s, s)
    e = s // 8
    mask[:, :, 4 * e : 7 * e, 2 * e : 6 * e] = 1.0  # Binary, aligned to 32×32 cells at 256.
    mel = torch.rand(n, 1, cfg.mel.n_mels, cfg.mel.window_frames, generator=g) * 8 - 4
    return target, reference, mask, mel


@pytest.mark.parametrize("cfg,n", [(LITE, 2), (FULL, 1)], ids=["lite", "full"])
def test_output_shapes(cfg: GeneratorConfig, n: int) -> None:
    model = seeded_model(cfg)
    target, reference, mask, mel = inputs(cfg, n)
    with torch.no_grad():
        ws, feats = model.encode(target, reference, mask, mel)
        img = model.synthesize(ws, feats, mask)
    s = cfg.resolution
    assert cfg.num_layers == (14 if s == 256 else 12)
    assert ws.shape == (n, cfg.num_layers, cfg.w_dim)
    assert [f.shape[-1] for f in feats] == [2**i for i in range(2, s.bit_length())]
    assert img.shape == (n, 3, s, s) and img.dtype == torch.float32
    assert torch.isfinite(img).all()


def test_window_forward_shape_lite() -> None:
    model = seeded_model(LITE)
    t = 5
    target, reference, mask, mel = inputs(LITE, t)
    with torch.no_grad():
        out = model(target[None], reference[:1], mask[None], mel[None])
    assert out.shape == (1, t, 3, LITE.resolution, LITE.resolution)


def test_wrong_shape_names_the_input() -> None:
    model = seeded_model(LITE)
    target, reference, mask, mel = inputs(LITE, 1)
    with pytest.raises(ValueError, match="reference"):
        model.encode(target, reference[:, :, :64], mask, mel)


@pytest.mark.parametrize("cfg", [LITE, FULL], ids=["lite", "full"])
def test_masked_layers_are_the_high_resolution_half(cfg: GeneratorConfig) -> None:
    syn = seeded_model(cfg).synthesis
    masked = [i + 1 for i in range(cfg.num_layers) if syn.is_masked(i)]
    half = cfg.num_layers // 2
    assert masked == list(range(half + 1, cfg.num_layers + 1))  # l > ⌊L/2⌋ (8..14 at 256).


def test_eq1_gradient_wrt_reference_inside_mask() -> None:
    """d(F'_l inside M)/d(I_ref) is zero for l > L/2 and non-zero for l <= L/2.

    F'_l is what layer l actually receives (the same list the synthesis consumes). Restricting
    to the mask region makes the test fail if Eq. 1 is missing, applied to the wrong layers, or
    applied with a mask that does not cover the region.
    """
    cfg = LITE
    model = seeded_model(cfg)
    target, reference, mask, mel = inputs(cfg, 1)
    reference.requires_grad_(True)
    _, feats = model.encode(target, reference, mask, mel)
    noises = model.synthesis.noise_inputs(feats, mask)
    inside = mask[:, :, :, :].bool()
    for i, feat in enumerate(noises):
        r = feat.shape[-1]
        m_r = torch.nn.functional.adaptive_avg_pool2d(mask, r)  # Exactly 0/1 for this mask.
        (grad,) = torch.autograd.grad((feat * m_r).sum(), reference, retain_graph=True)
        grad_in = grad.abs().sum(dim=1, keepdim=True)[inside]
        if i + 1 > cfg.num_layers // 2:  # Eq. 1's rule, not the model's own predicate.
            assert grad_in.max().item() == 0.0, f"layer {i + 1} leaks the reference mouth"
        else:
            assert grad_in.max().item() > 0.0, f"layer {i + 1} ignores the reference"


def test_masked_features_inside_mask_never_reach_the_image() -> None:
    cfg = LITE
    model = seeded_model(cfg)
    target, reference, mask, mel = inputs(cfg, 1)
    with torch.no_grad():
        ws, feats = model.encode(target, reference, mask, mel)
        base = model.synthesize(ws, feats, mask)
        for k, feat in enumerate(feats):  # feats[k] feeds layers 2k and 2k+1.
            r = feat.shape[-1]
            m_r = torch.nn.functional.adaptive_avg_pool2d(mask, r)
            poked = list(feats)
            poked[k] = feat + 10.0 * m_r  # Change F_r only inside the mask.
            diff = (model.synthesize(ws, poked, mask) - base).abs().max().item()
            if 2 * k + 1 > cfg.num_layers // 2:  # Both layers 2k+1, 2k+2 (1-based) masked.
                assert diff == 0.0, f"F_{r} inside M reached the image"
            else:
                assert diff > 1e-3, f"F_{r} has no effect on the image"


def test_delta_w_zero_leaves_output_identical() -> None:
    with_dw = seeded_model(LITE)
    without = seeded_model(LITE, with_delta_w=False)
    state = {k: v for k, v in with_dw.state_dict().items() if not k.startswith("delta_w.")}
    without.load_state_dict(state, strict=True)
    target, reference, mask, mel = inputs(LITE, 3)
    with torch.no_grad():
        a = with_dw(target[None], reference[:1], mask[None], mel[None])
        b = without(target[None], reference[:1], mask[None], mel[None])
        assert torch.equal(a, b)
        torch.nn.init.normal_(with_dw.delta_w.fc1.weight)  # A personalized ΔW must matter.
        c = with_dw(target[None], reference[:1], mask[None], mel[None])
    assert not torch.allclose(a, c)


def test_silent_mel_is_what_the_frontend_gives_for_digital_silence() -> None:
    front = MelFrontend(LITE.mel)
    zeros = front.windows(np.zeros(16000, np.float32), Fraction(25), np.arange(5))
    model = seeded_model(LITE)
    assert torch.equal(model.silent_mel(torch.empty_like(zeros)), zeros)


def test_audio_scale_extrapolates_w_from_the_silent_prediction() -> None:
    model = seeded_model(LITE)
    target, reference, mask, mel = inputs(LITE, 3)
    silent = model.silent_mel(mel)
    with torch.no_grad():
        w1, _ = model.encode(target, reference, mask, mel)
        w0, _ = model.encode(target, reference, mask, silent)
        w3, _ = model.encode(target, reference, mask, mel, audio_scale=3.0)
        w3_silent, _ = model.encode(target, reference, mask, silent, audio_scale=3.0)
    assert not torch.allclose(w1, w0)  # The audio moves w, so the test can see the scale.
    torch.testing.assert_close(w3, w0 + 3.0 * (w1 - w0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(w3_silent, w0)  # Silence stays silence at any scale.


def test_config_without_the_reference_gate_keeps_its_digest() -> None:
    """The optional field is left out while off, so the bundled checkpoints' pins still hold."""
    import json
    from pathlib import Path

    record = json.loads((Path(__file__).parents[2] / "weights" / "lite-v3.json").read_text())
    assert "reference_gate" not in LITE.to_dict()
    assert LITE.digest() == record["config_sha256"]
    assert GeneratorConfig.from_dict(record["config"]) == LITE
    gated = dataclasses.replace(LITE, reference_gate=True)
    assert gated.to_dict()["reference_gate"] is True
    assert GeneratorConfig.from_dict(gated.to_dict()) == gated
    assert gated.digest() != LITE.digest()
    with pytest.raises(ConfigError, match="unknown"):
        GeneratorConfig.from_dict({**LITE.to_dict(), "reference_gates": True})


def test_reference_gate_starts_as_eq1_and_opens_the_mask_to_the_reference() -> None:
    """Zero gates reproduce the ungated model exactly; open gates let the reference's
    features inside the mask reach the masked layers (Eq. 1's rule relaxed), and the gates
    receive gradients, so training can open them."""
    plain = seeded_model(LITE)
    gated = seeded_model(dataclasses.replace(LITE, reference_gate=True))
    missing = gated.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(".ref_gates." in k for k in missing)
    target, reference, mask, mel = inputs(LITE, 3)
    with torch.no_grad():
        assert torch.equal(
            plain(target[None], reference[:1], mask[None], mel[None]),
            gated(target[None], reference[:1], mask[None], mel[None]),
        )
    with torch.no_grad():
        for g in gated.synthesis.ref_gates:
            g.fill_(0.5)
    reference = reference[:1].clone().requires_grad_(True)
    _, feats = gated.encode(target[:1], reference, mask[:1], mel[:1])
    noises = gated.synthesis.noise_inputs(feats, mask[:1])
    last = noises[-1]  # The full-resolution layer: masked by Eq. 1.
    (grad,) = torch.autograd.grad((last * mask[:1]).sum(), reference, retain_graph=True)
    assert grad[:, :, mask[0, 0].bool()].abs().max().item() > 0.0
    ws, feats = gated.encode(target[:1], reference, mask[:1], mel[:1])
    gated.synthesize(ws, feats, mask[:1]).square().mean().backward()
    assert all(g.grad is not None and g.grad.abs().max() > 0 for g in gated.synthesis.ref_gates)
