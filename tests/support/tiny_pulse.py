"""Tiny random generators for the PULSE tests: varied images in milliseconds."""

from __future__ import annotations

import pytest
import torch

import core.models
from core.models.stylegan2_layers import NoiseInjection

TINY_SG2 = dict(size=32, style_dim=16, n_mlp=2, channels={4: 16, 8: 16, 16: 8, 32: 8})


def tiny_dcgan() -> torch.nn.Module:
    """A 64 px DCGAN (nz 16) with He-scaled weights (the default init gives flat grey images)."""
    torch.manual_seed(0)
    model = core.models.build("dcgan", nz=16, ngf=4)
    state = model.state_dict()
    for key, value in state.items():
        if value.ndim == 4:
            state[key] = torch.randn_like(value) * (2.0 / (value.shape[0] * 4)) ** 0.5
    model.load_state_dict(state)
    return model.eval().requires_grad_(False)


def tiny_stylegan2() -> torch.nn.Module:
    """A 32 px StyleGAN2 whose noise inputs have an effect (their strengths are 0 at init)."""
    torch.manual_seed(0)
    model = core.models.build("stylegan2", **TINY_SG2)
    for module in model.modules():
        if isinstance(module, NoiseInjection):
            module.weight.data.fill_(0.3)
    return model.eval().requires_grad_(False)


def in_distribution_target(adapter, size: int, seed: int = 123) -> torch.Tensor:
    """A face the adapter's generator can make, downscaled to ``size``: a target the search can reach."""
    from core.pipelines.pulse_search import downscale

    with torch.no_grad():
        state = adapter.init_state(1, torch.Generator().manual_seed(seed))
        return downscale(adapter.render(state, final=True), size).clamp(0, 1)


# Fixtures shared by the PULSE test modules (import them by these names; pytest uses the ``name=``).
@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models: one intra-op thread is faster than two fighting over a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", name="tiny_dcgan")
def tiny_dcgan_adapter():
    from core.pipelines.pulse_adapters import DCGANAdapter

    return DCGANAdapter(tiny_dcgan())


@pytest.fixture(scope="module", name="tiny_sg2")
def tiny_sg2_with_fit():
    """The tiny StyleGAN2 and its Gaussian fit (the PULSE prior)."""
    from core.pipelines.pulse_adapters import gaussian_fit

    model = tiny_stylegan2()
    return model, gaussian_fit(model, samples=3000, batch=1000)
