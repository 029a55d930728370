"""The generators PULSE searches, behind one small adapter interface.

An adapter knows its generator's latent layout (``init_state``, ``trainable``), renders faces in
[0, 1] (``render``) and adds its regulariser to the loss (``regulariser``). StyleGAN2 searches W+ in the Gaussian-fitted space of its own
mapping network with trainable noise in the first layers, and may search on the 256 px
intermediate RGB of the skip architecture, rendering the full image once at the end. The
offline DCGAN searches z in R^100 without GEOCROSS.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from core.pipelines.pulse_search import geocross


class DCGANAdapter:
    """DCGAN ``G(z)``, z in R^nz on its sphere; output mapped from [-1, 1] to [0, 1]; no GEOCROSS."""

    name = "DCGAN"

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.device = next(model.parameters()).device
        self.nz = model.nz
        self.size = 64
        self.search_size = 64

    def init_state(self, n: int, generator: torch.Generator) -> dict:
        return {"latent": torch.randn(n, 1, self.nz, generator=generator).to(self.device), "noise": []}

    def trainable(self, state: dict) -> list[torch.Tensor]:
        return [state["latent"]]

    def render(self, state: dict, final: bool = False) -> torch.Tensor:
        return (self.model(state["latent"][:, 0]) + 1) / 2

    def regulariser(self, state: dict) -> torch.Tensor | None:
        return None


class StyleGAN2Adapter:
    """StyleGAN2 W+ search as PULSE did for StyleGAN1.

    The optimised latent ``x`` [B, n_latent, dim] lives in a Gaussianised space:
    ``w = LeakyReLU(0.2)(x * std + mean)``, where (mean, std) fit ``LeakyReLU(5)(mapping(z))``
    over many z (:func:`gaussian_fit`). Noise: the first ``trainable_noise`` layers are optimised,
    the others are fixed N(0, 1) draws, and the last (full-resolution) layer is zero, as PULSE's
    defaults. ``search_resolution`` < size searches on the intermediate RGB of the skip
    architecture at that resolution; :meth:`render` with ``final=True`` always renders ``size``.
    """

    name = "StyleGAN2"

    def __init__(self, model: torch.nn.Module, fit: tuple[torch.Tensor, torch.Tensor] | None = None,
                 search_resolution: int | None = None, trainable_noise: int = 5):
        self.model = model
        self.device = model.input.input.device
        self.size = model.size
        self.search_size = search_resolution or model.size
        if self.search_size not in model.channels:
            raise ValueError(f"search_resolution must be a power of two <= {model.size}, got {search_resolution}.")
        mean, std = fit if fit is not None else gaussian_fit(model)
        self.mean, self.std = mean.to(self.device), std.to(self.device)
        self.trainable_noise = trainable_noise

    def init_state(self, n: int, generator: torch.Generator) -> dict:
        m = self.model
        latent = torch.randn(n, m.n_latent, m.style_dim, generator=generator)
        noise = []
        for i in range(m.num_layers):
            r = m.noise_resolution(i)
            last = i == m.num_layers - 1  # PULSE zeroes the last (full-resolution) noise layer
            noise.append(torch.zeros(n, 1, r, r) if last else torch.randn(n, 1, r, r, generator=generator))
        return {"latent": latent.to(self.device), "noise": [t.to(self.device) for t in noise]}

    def trainable(self, state: dict) -> list[torch.Tensor]:
        return [state["latent"]] + state["noise"][: self.trainable_noise]

    def w_plus(self, state: dict) -> torch.Tensor:
        return F.leaky_relu(state["latent"] * self.std + self.mean, 0.2)

    def render(self, state: dict, final: bool = False) -> torch.Tensor:
        resolution = self.size if final else self.search_size
        return (self.model.synthesis(self.w_plus(state), noise=state["noise"], resolution=resolution) + 1) / 2

    def regulariser(self, state: dict) -> torch.Tensor | None:
        return geocross(self.w_plus(state))


@torch.no_grad()
def gaussian_fit(model: torch.nn.Module, samples: int = 100_000, seed: int = 0,
                 batch: int = 10_000) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) [style_dim] of ``LeakyReLU(5)(mapping(z))`` over ``samples`` z ~ N(0, I) (float64 sums)."""
    generator = torch.Generator().manual_seed(seed)
    device = model.input.input.device
    total = torch.zeros(model.style_dim, dtype=torch.float64)
    total_sq = torch.zeros(model.style_dim, dtype=torch.float64)
    for start in range(0, samples, batch):
        z = torch.randn(min(batch, samples - start), model.style_dim, generator=generator).to(device)
        v = F.leaky_relu(model.mapping(z), 5.0).double().cpu()
        total += v.sum(0)
        total_sq += v.pow(2).sum(0)
    mean = total / samples
    std = (total_sq / samples - mean.pow(2)).clamp_min(0).sqrt() * math.sqrt(samples / max(samples - 1, 1))
    return mean.float(), std.float()


def load_generator(model_id: str, device: torch.device | str | None = None) -> torch.nn.Module:
    """The generator of ``model_id`` as the search uses it: float32 (it back-propagates through it)."""
    from core.weights import load_model

    return load_model(model_id, device=device, dtype=torch.float32)


def as_adapter(model: torch.nn.Module, model_id: str | None = None, search_resolution: int | None = None,
               fit_samples: int = 100_000):
    """The adapter of a built DCGAN or StyleGAN2 generator (StyleGAN2's Gaussian fit is cached per ``model_id``)."""
    from core.cache import MODEL_CACHE

    if hasattr(model, "nz"):
        return DCGANAdapter(model)
    if not hasattr(model, "synthesis"):
        raise ValueError(f"PULSE supports dcgan and stylegan2 generators, not {type(model).__name__}.")
    if model_id is None:
        fit = gaussian_fit(model, samples=fit_samples)
    else:
        key = (model_id, "pulse_gaussian_fit", fit_samples, str(model.input.input.device))
        fit = MODEL_CACHE.get_or_load(key, lambda: gaussian_fit(model, samples=fit_samples),
                                      size=lambda f: sum(t.numel() * t.element_size() for t in f))
    search = min(search_resolution, model.size) if search_resolution else None  # 256 on a 256 px model: no-op
    return StyleGAN2Adapter(model, fit=fit, search_resolution=search)


def load_adapter(model_id: str, device: torch.device | str | None = None, search_resolution: int | None = None,
                 fit_samples: int = 100_000):
    """The adapter for a manifest model (``dcgan`` or ``stylegan2``); loads weights (shared cache)."""
    from core.weights import get_entry

    arch = get_entry(model_id).arch
    if arch not in ("dcgan", "stylegan2"):
        raise ValueError(f"PULSE supports dcgan and stylegan2 generators, not {arch!r} ({model_id}).")
    return as_adapter(load_generator(model_id, device), model_id, search_resolution, fit_samples)
