"""The reference trainers' weight initialisation."""

from __future__ import annotations

import torch
from torch import nn

from core.train.weight_init import init_weights


def net():
    return nn.Sequential(nn.Conv2d(16, 64, 3), nn.BatchNorm2d(64), nn.ConvTranspose2d(64, 32, 4), nn.Linear(50, 40))


def test_convolutions_and_linears_are_normal_002_with_zero_biases():
    torch.manual_seed(0)
    model = net()
    init_weights(model)
    for layer in (model[0], model[2], model[3]):
        assert abs(layer.weight.std().item() - 0.02) < 0.002 and abs(layer.weight.mean().item()) < 0.002
        assert torch.count_nonzero(layer.bias) == 0


def test_batchnorm_keeps_its_defaults_unless_a_std_is_given():
    torch.manual_seed(0)
    plain = net()
    init_weights(plain)
    assert torch.equal(plain[1].weight, torch.ones(64)) and torch.equal(plain[1].bias, torch.zeros(64))
    after_plain = torch.randn(1)
    torch.manual_seed(0)
    pix2pix = net()
    pix2pix[1].bias.data.fill_(3.0)
    init_weights(pix2pix, batchnorm_std=0.02)
    assert 0.01 < pix2pix[1].weight.std().item() < 0.03 and abs(pix2pix[1].weight.mean().item() - 1) < 0.01
    assert torch.count_nonzero(pix2pix[1].bias) == 0
    assert not torch.equal(torch.randn(1), after_plain)  # the BatchNorm draws consumed random numbers
