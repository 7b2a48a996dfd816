"""SyncNet and discriminator shapes at both resolutions."""

from __future__ import annotations

import pytest
import torch

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


@pytest.mark.parametrize("res", [128, 256])
def test_syncnet_similarity(res: int) -> None:
    torch.manual_seed(0)
    net = SyncNet(SyncNetConfig(resolution=res))
    frames = torch.rand(2, 5, 3, res, res) * 2 - 1
    faces = SyncNet.lower_half(frames)
    assert faces.shape == (2, 15, res // 2, res)
    mel = torch.rand(2, 1, 80, 16) * 8 - 4
    p = net(faces, mel)
    assert p.shape == (2,) and (p >= 0).all() and (p <= 1 + 1e-6).all()
    loss = sync_loss(p, torch.ones(2))
    loss.backward()
    assert net.visual.stem.weight.grad is not None
