"""MaLS: the moving average by hand, length preservation, init, locality."""

from __future__ import annotations

import pytest
import torch

from lipdub.model.mals import MaLS, TemporalConv, moving_average


def test_moving_average_hand_computed() -> None:
    ws = torch.tensor([1.0, 2.0, 4.0, 8.0]).view(1, 4, 1, 1)
    # Ends repeat: w_0 = w_1 = 1, w_5 = w_4 = 8.
    want = [
        0.25 * 1 + 0.5 * 1 + 0.25 * 2,  # 1.25
        0.25 * 1 + 0.5 * 2 + 0.25 * 4,  # 2.25
        0.25 * 2 + 0.5 * 4 + 0.25 * 8,  # 4.5
        0.25 * 4 + 0.5 * 8 + 0.25 * 8,  # 7.0
    ]
    assert moving_average(ws).flatten().tolist() == want


@pytest.mark.parametrize("t", [1, 2, 5, 17])
def test_mals_keeps_length_and_starts_as_the_moving_average(t: int) -> None:
    torch.manual_seed(0)
    mals = MaLS(num_layers=3, w_dim=8, hidden=4, depth=2)
    ws = torch.randn(2, t, 3, 8)
    out = mals(ws)
    assert out.shape == ws.shape
    assert torch.equal(out, moving_average(ws))  # Zero-initialised residual convs.


def test_mals_per_layer_stacks_are_independent() -> None:
    torch.manual_seed(0)
    mals = MaLS(num_layers=2, w_dim=4, hidden=4, depth=2)
    with torch.no_grad():
        for p in mals.stacks[1].parameters():
            p.normal_()
    ws = torch.randn(1, 6, 2, 4)
    out = mals(ws)
    avg = moving_average(ws)
    assert torch.equal(out[:, :, 0], avg[:, :, 0])
    assert not torch.allclose(out[:, :, 1], avg[:, :, 1])


def test_temporal_conv_reflection_padding_by_hand() -> None:
    conv = TemporalConv(1, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[1.0, 10.0, 100.0]]]) / conv.weight_gain)
    x = torch.tensor([[[1.0, 2.0, 3.0]]])
    # Reflection pad 1: [2, 1, 2, 3, 2].
    want = [2 + 10 + 200, 1 + 20 + 300, 2 + 30 + 200]
    assert conv(x).flatten().tolist() == pytest.approx(want)


def test_mals_is_local_with_its_radius() -> None:
    """Output t depends only on inputs within `radius`: what lets the engine chunk exactly."""
    torch.manual_seed(0)
    mals = MaLS(num_layers=2, w_dim=6, hidden=5, depth=3)
    with torch.no_grad():
        for p in mals.parameters():
            p.normal_()
    ws = torch.randn(1, 30, 2, 6)
    full = mals(ws)
    r = mals.radius
    lo, hi = 10, 20  # Outputs [lo, hi) from the window [lo − r, hi + r).
    part = mals(ws[:, lo - r : hi + r])[:, r:-r]
    torch.testing.assert_close(part, full[:, lo:hi], rtol=0, atol=1e-5)
    short = mals(ws[:, lo - r + 1 : hi + r - 1])[:, r - 1 : -(r - 1)]
    assert not torch.allclose(short, full[:, lo:hi], atol=1e-5)  # Radius is not smaller.
