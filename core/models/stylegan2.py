"""StyleGAN2 generator (Karras et al., CVPR 2020, arXiv:1912.04958) in the rosinality layout.

Pure PyTorch (no custom CUDA kernels): the FIR resampling ``upfirdn2d``, the fused
bias + leaky ReLU and the modulated convolution (:mod:`core.models.stylegan2_layers`) are
written with plain torch ops, so the same code runs on CPU, CUDA and MPS. State-dict keys and shapes are those of
``rosinality/stylegan2-pytorch`` ``model.Generator`` (the ``g_ema`` of
``stylegan2-ffhq-config-f.pt``):

- ``style.1..n_mlp``: the mapping network (``style.0`` is the parameter-free PixelNorm).
- ``input.input`` [1, C4, 4, 4], ``conv1.*`` and ``to_rgb1.*`` at 4x4.
- ``convs.2j`` (upsampling) and ``convs.2j+1`` at resolution ``2**(j+3)``, ``to_rgbs.j``.
- ``noises.noise_i`` [1, 1, r, r]: the stored noise constants, r = ``2**((i+5)//2)``.

Equalised learning rate: weights are stored unscaled and scaled at run time (1/sqrt(fan_in),
times ``lr_mul`` for the mapping layers). W+ layout (``n_latent = 2*log2(size) - 2``): index 0
drives ``conv1``; index 1 drives ``to_rgb1`` and ``convs.0``; for block j, ``convs.2j`` uses
``1+2j``, ``convs.2j+1`` uses ``2+2j`` and ``to_rgbs.j`` uses ``3+2j`` (shared with the next
block's upsampling conv); the last index drives only the last ToRGB.

Output: the raw ToRGB skip sum, nominally in [-1, 1] (no tanh, no clamp).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from core.models.stylegan2_layers import ConstantInput, EqualLinear, PixelNorm, StyledConv, ToRGB


def default_channels(channel_multiplier: int = 2) -> dict[int, int]:
    """The reference channel table of ``Generator(..., channel_multiplier)``: resolution -> channels."""
    cm = channel_multiplier
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm, 1024: 16 * cm}


class StyleGAN2Generator(nn.Module):
    """rosinality ``Generator(size, style_dim, n_mlp, channel_multiplier)``; ``channels`` overrides the table.

    ``channels`` maps resolution (4 .. size) to the number of feature maps, e.g. a reduced-width
    model for tests; the default is the reference table (512 up to 32x32, then decreasing).
    """

    def __init__(self, size: int = 1024, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1), lr_mlp: float = 0.01,
                 channels: Mapping[int | str, int] | None = None):
        super().__init__()
        if size < 8 or size & (size - 1):
            raise ValueError(f"size must be a power of two >= 8, got {size}.")
        self.size = size
        self.style_dim = style_dim
        self.log_size = int(math.log2(size))
        self.n_latent = self.log_size * 2 - 2
        self.num_layers = (self.log_size - 2) * 2 + 1
        table = default_channels(channel_multiplier)
        if channels is not None:
            table.update({int(k): int(v) for k, v in channels.items()})
        self.channels = {2**i: table[2**i] for i in range(2, self.log_size + 1)}

        self.style = nn.Sequential(PixelNorm(), *[
            EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True) for _ in range(n_mlp)])

        c4 = self.channels[4]
        self.input = ConstantInput(c4)
        self.conv1 = StyledConv(c4, c4, 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(c4, style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for i in range(self.num_layers):
            r = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))
        in_channel = c4
        for i in range(3, self.log_size + 1):
            out_channel = self.channels[2**i]
            self.convs.append(StyledConv(in_channel, out_channel, 3, style_dim, upsample=True, blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out_channel, out_channel, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_channel, style_dim))
            in_channel = out_channel

    # --- the two halves -------------------------------------------------------------------
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, style_dim] ~ N(0, I) -> w [B, style_dim]."""
        return self.style(z)

    def noise_resolution(self, index: int) -> int:
        return 2 ** ((index + 5) // 2)

    def stored_noise(self) -> list[torch.Tensor]:
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    def synthesis(self, w_plus: torch.Tensor, noise: Sequence[torch.Tensor | None] | str | None = None,
                  resolution: int | None = None) -> torch.Tensor:
        """W+ [B, n_latent, style_dim] (or w [B, style_dim], broadcast) -> raw RGB [B, 3, R, R].

        ``noise``: None = the stored noise buffers; ``"random"`` = fresh N(0, 1) noise; or a list of
        ``num_layers`` tensors [B or 1, 1, r, r] (a None entry draws fresh noise for that layer).
        ``resolution`` (a power of two <= size, default ``size``) stops at that resolution and
        returns the intermediate RGB of the skip architecture (only the W+ indices and noise
        layers up to there are used).
        """
        if w_plus.ndim == 2:
            w_plus = w_plus[:, None].expand(-1, self.n_latent, -1)
        if w_plus.ndim != 3 or w_plus.shape[1] != self.n_latent or w_plus.shape[2] != self.style_dim:
            raise ValueError(f"w_plus must be [B, {self.n_latent}, {self.style_dim}], got {tuple(w_plus.shape)}.")
        resolution = resolution or self.size
        if resolution not in self.channels:
            raise ValueError(f"resolution must be a power of two in [4, {self.size}], got {resolution}.")
        if noise is None:
            noise = self.stored_noise()
        elif isinstance(noise, str):
            if noise != "random":
                raise ValueError(f"noise must be None, 'random' or a list, got {noise!r}.")
            noise = [None] * self.num_layers
        elif len(noise) != self.num_layers:
            raise ValueError(f"noise must have {self.num_layers} entries (one per layer), got {len(noise)}.")

        # channels_last: oneDNN's NHWC kernels run the wide, shallow high-resolution layers
        # faster (1.2 s -> 1.03 s at 1024 on a 2-core CPU); every layer keeps the layout.
        out = self.input(w_plus.shape[0]).contiguous(memory_format=torch.channels_last)
        out = self.conv1(out, w_plus[:, 0], noise[0])
        skip = self.to_rgb1(out, w_plus[:, 1])
        for j in range(int(math.log2(resolution)) - 2):
            k = 1 + 2 * j
            out = self.convs[2 * j](out, w_plus[:, k], noise[k])
            out = self.convs[2 * j + 1](out, w_plus[:, k + 1], noise[k + 1])
            skip = self.to_rgbs[j](out, w_plus[:, k + 2], skip)
        return skip

    def forward(self, z: torch.Tensor, noise: Sequence[torch.Tensor | None] | str | None = None) -> torch.Tensor:
        """z [B, style_dim] -> image (the same w at every layer, no truncation)."""
        return self.synthesis(self.mapping(z), noise=noise)

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean of mapping(z) over ``n`` samples: the truncation centre, [1, style_dim]."""
        z = torch.randn(n, self.style_dim, generator=generator).to(self.input.input)
        return self.mapping(z).mean(0, keepdim=True)
