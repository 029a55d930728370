"""The latent encoder: DCGAN-discriminator layout down to 4x4, then z; strict loading; clear input errors."""

import pytest
import torch

import core.models as registry
from core.models.latent_encoder import LatentEncoder


def test_layout_and_output():
    encoder = LatentEncoder(nz=100, width=16).eval()
    convs = [m for m in encoder.features if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.stride) for c in convs] == [
        (3, 16, (2, 2)), (16, 32, (2, 2)), (32, 64, (2, 2)), (64, 128, (2, 2))]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in encoder.features) == 3  # none after the first conv
    assert encoder.head.in_features == 128 * 4 * 4 and encoder.head.out_features == 100
    assert sum(p.numel() for p in encoder.parameters()) == 378_164  # the shipped latent.encoder_dcgan64
    assert LatentEncoder(nz=8, width=4, img_size=32)(torch.zeros(2, 3, 32, 32)).shape == (2, 8)


def test_strict_load_and_clear_errors():
    torch.manual_seed(0)
    reference = LatentEncoder(nz=8, width=4).eval()
    model = registry.load("latent_encoder", reference.state_dict(), nz=8, width=4)
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    with pytest.raises(registry.StateDictMismatchError, match="missing"):
        registry.load("latent_encoder", {k: v for k, v in reference.state_dict().items() if k != "head.bias"},
                      nz=8, width=4)
    with pytest.raises(ValueError, match="64x64 images, got \\(32, 32\\)"):
        model(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="power of two"):
        LatentEncoder(img_size=48)
