"""The generator's losses (StyleSync §3.4): L_g = L_adv + λ_r·L_rec + λ_s·L_sync, λ_r = 10, λ_s = 1.

- L_rec = L1 + perceptual. The paper's perceptual term is a VGG19 feature loss; VGG weights cannot
  be downloaded here, so by default a **documented substitute** stands in: discriminator feature
  matching (pix2pixHD, Wang et al. 2018), Σ_l w_l·mean|D_l(I^g) − D_l(I)| over the outputs of the
  StyleGAN2 discriminator's residual blocks, with the real features detached. A user who has
  VGG19 weights (torchvision's ``vgg19`` state dict saved as safetensors, keys
  ``features.N.weight``) passes the file and gets the paper's loss: Σ_l w_l·mean|φ_l(I^g) − φ_l(I)|
  at relu1_1 .. relu5_1 with pix2pixHD's weights 1/32, 1/16, 1/8, 1/4, 1.
- L_adv: StyleGAN2's non-saturating logistic loss, softplus(−D(I^g)) for G and
  softplus(D(I^g)) + softplus(−D(I)) for D, with the lazy R1 penalty (γ/2)·E‖∇_I D(I)‖².
- L_sync: −log P_sync of the frozen SyncNet on the 5 generated frames and the middle frame's mel
  window (Wav2Lip's expert loss), i.e. BCE with target 1.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from lipdub.errors import WeightsError
from lipdub.eval.sync_scoring import syncnet_input
from lipdub.model.discriminator import Discriminator
from lipdub.model.syncnet import SyncNet, sync_loss

LAMBDA_REC = 10.0  # λ_r: weight of L_rec in L_g.
LAMBDA_SYNC = 1.0  # λ_s: weight of L_sync in L_g.
LAMBDA_ADV = 1.0  # Weight of L_adv in L_g.
R1_GAMMA = 1.0  # γ of the R1 penalty (StyleGAN2's heuristic 2e-4·S²/batch ≈ 1 at 128).
FM_WEIGHTS_DECAY = 0.5  # Feature-matching weight halves per block towards the image (coarse = 1).
# VGG19 (torchvision ``features`` indices): relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
VGG_LAYERS = (1, 6, 11, 20, 29)
VGG_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)  # pix2pixHD's VGGLoss weights.
VGG_CFG = (
    64,
    64,
    "M",
    128,
    128,
    "M",
    256,
    256,
    256,
    256,
    "M",
    512,
    512,
    512,
    512,
    "M",
    512,
    512,
    512,
    512,
)  # VGG19 "E" up to conv5_4.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def discriminator_features(
    d: Discriminator, img: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """D's logits and the outputs of its residual blocks (same computation as ``d(img)``)."""
    x = d.fromrgb(img)
    feats = []
    for block in d.blocks:
        x, _ = block(x)
        feats.append(x)
    x = d.conv(d.mbstd(x))
    return d.out(d.fc(x.flatten(1))).squeeze(1), feats


def feature_matching(fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    """Σ_l w_l·mean|D_l(I^g) − D_l(I)|; the deepest block has weight 1, each shallower half."""
    n = len(fake)
    total = fake[0].new_zeros(())
    for i, (f, r) in enumerate(zip(fake, real, strict=True)):
        total = total + FM_WEIGHTS_DECAY ** (n - 1 - i) * (f - r.detach()).abs().mean()
    return total


class VGG19Perceptual(nn.Module):
    """The paper's perceptual loss on VGG19 features from a user-supplied weight file."""

    mean: torch.Tensor  # Buffers: ImageNet normalisation, (1, 3, 1, 1).
    std: torch.Tensor

    def __init__(self, weights: Path) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for v in VGG_CFG:
            if isinstance(v, str):  # "M"
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=False)]
                c = v
        self.features = nn.Sequential(*layers[: VGG_LAYERS[-1] + 1])
        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"VGG19 weights not found: {path}")
        state = load_file(str(path))
        state = {k.removeprefix("features."): v for k, v in state.items() if "classifier" not in k}
        own = self.features.state_dict()
        missing = sorted(set(own) - set(state))
        if missing:
            raise WeightsError(f"{path}: not VGG19 weights (missing {missing[:3]})")
        self.features.load_state_dict({k: state[k] for k in own})
        self.requires_grad_(False).eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Σ_l w_l·mean|φ_l(I^g) − φ_l(I)| for (N, 3, S, S) images in [-1, 1]."""
        x = torch.cat([fake, real]).add(1).div(2).sub(self.mean).div(self.std)
        total = x.new_zeros(())
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in VGG_LAYERS:
                f, r = x.chunk(2)
                total = total + VGG_WEIGHTS[VGG_LAYERS.index(i)] * (f - r.detach()).abs().mean()
        return total


def g_adversarial(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating L_adv for G: E[softplus(−D(I^g))]."""
    return F.softplus(-fake_logits).mean()


def d_adversarial(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's logistic loss: E[softplus(D(I^g))] + E[softplus(−D(I))]."""
    return F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()


def r1_penalty(d: Discriminator, real: torch.Tensor, gamma: float = R1_GAMMA) -> torch.Tensor:
    """(γ/2)·E‖∇_I D(I)‖² on real images (Mescheder et al. 2018)."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(real).sum(), real, create_graph=True)
    return 0.5 * gamma * grad.square().sum(dim=[1, 2, 3]).mean()


def generator_sync_loss(syncnet: SyncNet, frames: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
    """L_sync = −log P_sync(5 generated frames (N, 5, 3, S, S), mel (N, 1, n_mels, W))."""
    p = syncnet(syncnet_input(syncnet, frames), mel)
    return sync_loss(p, torch.ones_like(p))
