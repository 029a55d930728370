"""Tiny generators shared by the latent lab's tests."""

from __future__ import annotations

import pytest
import torch

from core.models.dcgan import DCGANGenerator
from core.models.stylegan2 import StyleGAN2Generator
from core.pipelines.latent import space as lab


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run several times faster on one thread (no OpenMP hand-offs on a loaded CPU)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def dcgan():
    """A tiny DCGAN whose BatchNorm statistics are calibrated, so its images have contrast."""
    torch.manual_seed(0)
    model = DCGANGenerator(nz=8, ngf=4)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # a cumulative average over the calibration batches
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(64, 8))
    gen = lab.LatentGenerator(model.eval().requires_grad_(False), "tiny.dcgan")
    assert lab.to_uint8(gen.decode(gen.z_from_seeds(range(8)))).std() > 20
    return gen


@pytest.fixture(scope="module")
def stylegan():
    torch.manual_seed(0)
    model = StyleGAN2Generator(size=64, style_dim=16, n_mlp=2, channels={r: 8 for r in (4, 8, 16, 32, 64)})
    return lab.LatentGenerator(model.eval().requires_grad_(False), "tiny.stylegan2", w_avg_samples=256)
