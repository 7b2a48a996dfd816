"""SyncNet and discriminator shapes at both resolutions."""

from __future__ import annotations

import pytest
import torch

from lipdub.errors import ConfigError
from lipdub.model.config import FULL, LITE, GeneratorConfig, SyncNetConfig
from lipdub.model.discriminator import Discriminator
from lipdub.model.syncnet import SyncNet, sync_loss


@pytest.mark.parametrize("cfg", [LITE, FULL], ids=["lite", "full"])
def test_discriminator_shape(cfg: GeneratorConfig) -> None:
    torch.manual_seed(0)
    d = Discriminator(cfg)
    s = cfg.resolution
    with torch.no_grad():
        logits = d(torch.rand(2, 3, s, s) * 2 - 1)
    assert logits.shape == (2,) and torch.isfinite(logits).all()


@pytest.mark.parametrize("crop", [128, 256])
def test_syncnet_probability_and_gradient(crop: int) -> None:
    torch.manual_seed(0)
    net = SyncNet(SyncNetConfig())
    frames = torch.rand(2, 5, 3, crop, crop) * 2 - 1
    mouths = net.mouths(frames)
    assert mouths.shape == (2, 5, 48, 48)  # 96-pixel crop, box 0.375–0.875 × 0.25–0.75.
    mel = torch.rand(2, 1, 80, 16) * 8 - 4
    p = net(mouths, mel)
    assert p.shape == (2,) and (p > 0).all() and (p < 1).all()
    sync_loss(p, torch.ones(2)).backward()
    assert net.visual.convs[0][0].weight.grad is not None
    assert net.audio.convs[0][0].weight.grad is not None


def test_syncnet_mouth_box_is_grey_and_in_place() -> None:
    net = SyncNet(SyncNetConfig())
    frames = torch.full((1, 5, 3, 96, 96), -1.0)
    frames[..., 36:84, 24:72] = 1.0  # Exactly the mouth box at 96: white inside, black outside.
    mouths = net.mouths(frames)
    assert torch.allclose(mouths, torch.ones_like(mouths))


def test_syncnet_config_rejects_box_outside_crop() -> None:
    with pytest.raises(ConfigError):
        SyncNetConfig(mouth_box=(0.5, 1.2, 0.0, 1.0))
