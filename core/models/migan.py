"""MI-GAN generator (Sargsyan et al., ICCV 2023): a small inpainting GAN for mobile devices.

The computation of ``lib/model_zoo/migan_inference.py`` of Picsart-AI-Research/MI-GAN: a
U-Net-like encoder and synthesis network built only from depthwise-separable convolutions
(a depthwise 3x3 with bias, then a pointwise 1x1 without), the StyleGAN2 activation
``leaky_relu(0.2) * sqrt(2)`` clamped to +-256, and the [1, 3, 3, 1] FIR filter for every
down- and upsampling, stored as fixed depthwise convolution weights. The synthesis adds a
fixed noise map (``noise_const`` buffers, scaled by a learned ``noise_strength``) after each
of its convolutions, so the output is deterministic.

Fixed resolution: the noise maps and the upsampling masks (``filter_const``) have the model's
size, so the input must be exactly ``resolution`` x ``resolution`` (512 for Places2).

Input (4 channels, mask FIRST, **mask 1 = known**, the opposite of LaMa):
``cat([known - 0.5, image * known], dim=1)`` with the image in [-1, 1]. Output: RGB in
[-1, 1], uncomposited (not clamped; the caller composites it with the known pixels).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_FIR = (1.0, 3.0, 3.0, 1.0)


def activation(x: torch.Tensor) -> torch.Tensor:
    """StyleGAN2's ``lrelu_agc``: leaky ReLU (0.2), gain sqrt(2), clamp to +-256."""
    return (F.leaky_relu(x, 0.2) * math.sqrt(2)).clamp(-256, 256)


def _activation_(x: torch.Tensor) -> torch.Tensor:
    """:func:`activation` in place, for the fresh outputs of convolutions (these elementwise passes
    over full-resolution maps cost as much as the convolutions on a CPU; in place they cost half)."""
    return F.leaky_relu_(x, 0.2).mul_(math.sqrt(2)).clamp_(-256, 256)


def fir_kernel(gain: float) -> torch.Tensor:
    """The separable [1, 3, 3, 1] low-pass as a normalised 4x4 kernel, times ``gain``."""
    taps = torch.tensor(_FIR)
    kernel = torch.outer(taps, taps)
    return kernel / kernel.sum() * gain


def _depthwise_fir(channels: int, gain: float, **conv) -> nn.Conv2d:
    layer = nn.Conv2d(channels, channels, kernel_size=4, groups=channels, bias=False, **conv)
    with torch.no_grad():
        layer.weight.copy_(fir_kernel(gain).expand(channels, 1, 4, 4))
    return layer


class Downsample2d(nn.Module):
    """FIR low-pass and stride 2 in one depthwise convolution (padding 1)."""

    def __init__(self, channels: int):
        super().__init__()
        self.filter = _depthwise_fir(channels, 1.0, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.filter(x)


class Upsample2d(nn.Module):
    """x2 upsampling: zeros between the pixels, then the FIR low-pass (gain 4).

    The zeros are inserted as the reference does: nearest-neighbour x2, times a fixed mask that
    is 1 at even rows and columns (``filter_const``, of the output's size), then pad (2, 1, 2, 1).
    When ``filter_const`` is that mask (as in every published checkpoint), the same sums are
    computed in one strided transposed convolution with the flipped filter instead (about 3x
    cheaper on a CPU: no full-size intermediate maps).
    """

    def __init__(self, channels: int, resolution: int):
        super().__init__()
        mask = torch.zeros(resolution, resolution)
        mask[::2, ::2] = 1.0
        self.register_buffer("filter_const", mask[None, None])
        self.filter = _depthwise_fir(channels, 4.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._inserts_zeros():
            return F.conv_transpose2d(x, self.filter.weight.flip(2, 3), stride=2, padding=1, groups=x.shape[1])
        x = F.interpolate(x, scale_factor=2, mode="nearest") * self.filter_const
        return self.filter(F.pad(x, (2, 1, 2, 1)))

    def _inserts_zeros(self) -> bool:
        mask = self.filter_const
        return bool(mask[..., ::2, ::2].eq(1).all()) and float(mask.abs().sum()) == mask[..., ::2, ::2].numel()


class SeparableConv2d(nn.Module):
    """Depthwise 3x3 (bias) -> act -> [down] -> pointwise 1x1 -> [up] -> [+ fixed noise] -> act."""

    def __init__(self, in_channels: int, out_channels: int, down: bool = False, up_to: int | None = None,
                 noise_resolution: int | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.downsample = Downsample2d(in_channels) if down else None
        self.upsample = Upsample2d(out_channels, up_to) if up_to else None
        if noise_resolution:
            self.register_buffer("noise_const", torch.randn(noise_resolution, noise_resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        else:
            self.noise_const = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _activation_(self.conv1(x))
        if self.downsample is not None:
            x = self.downsample(x)
        x = self.conv2(x)
        if self.upsample is not None:
            x = self.upsample(x)
        if self.noise_const is not None:
            x = x.add_(self.noise_const * self.noise_strength)
        return _activation_(x)


class EncoderBlock(nn.Module):
    """[fromrgb 1x1 + act, added to x] -> conv1 (the skip feature) -> conv2 (stride 2 unless the last)."""

    def __init__(self, in_channels: int, out_channels: int, rgb_channels: int | None = None, down: bool = True):
        super().__init__()
        self.fromrgb = nn.Conv2d(rgb_channels, in_channels, 1) if rgb_channels else None
        self.conv1 = SeparableConv2d(in_channels, in_channels)
        self.conv2 = SeparableConv2d(in_channels, out_channels, down=down)

    def forward(self, x: torch.Tensor | None, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fromrgb is not None:
            y = _activation_(self.fromrgb(image))
            x = y if x is None else x + y
        feature = self.conv1(x)
        return self.conv2(feature), feature


def _channels(resolution: int, ch_base: int, ch_max: int) -> int:
    return min(ch_base // resolution, ch_max)


def _log2(resolution: int) -> int:
    log2 = int(math.log2(resolution))
    if resolution < 8 or 2**log2 != resolution:
        raise ValueError(f"MI-GAN's resolution must be a power of two of at least 8, got {resolution}.")
    return log2


class Encoder(nn.Module):
    """Blocks ``b{res}`` from ``resolution`` down to 4; returns the 4x4 code and one feature per resolution."""

    def __init__(self, resolution: int, in_channels: int, ch_base: int, ch_max: int):
        super().__init__()
        self.resolutions = [2**i for i in range(_log2(resolution), 1, -1)]
        for index, (res, next_res) in enumerate(zip(self.resolutions[:-1], self.resolutions[1:])):
            block = EncoderBlock(_channels(res, ch_base, ch_max), _channels(next_res, ch_base, ch_max),
                                 rgb_channels=in_channels if index == 0 else None)
            setattr(self, f"b{res}", block)
        self.b4 = EncoderBlock(_channels(4, ch_base, ch_max), _channels(4, ch_base, ch_max), down=False)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        x, features = None, {}
        for res in self.resolutions:
            x, features[res] = getattr(self, f"b{res}")(x, image)
        return x, features


class SynthesisBlockFirst(nn.Module):
    """At 4x4: conv1, + the encoder's feature, conv2, to RGB."""

    def __init__(self, channels: int, rgb_channels: int):
        super().__init__()
        self.conv1 = SeparableConv2d(channels, channels)
        self.conv2 = SeparableConv2d(channels, channels)  # no noise at 4x4
        self.torgb = nn.Conv2d(channels, rgb_channels, 1)

    def forward(self, x: torch.Tensor, feature: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv2(self.conv1(x) + feature)
        return x, self.torgb(x)


class SynthesisBlock(nn.Module):
    """x2: conv1 (upsampling, noise), + the encoder's feature, conv2 (noise); RGB = up(RGB) + torgb(x)."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, rgb_channels: int):
        super().__init__()
        self.conv1 = SeparableConv2d(in_channels, out_channels, up_to=resolution, noise_resolution=resolution)
        self.conv2 = SeparableConv2d(out_channels, out_channels, noise_resolution=resolution)
        self.torgb = nn.Conv2d(out_channels, rgb_channels, 1)
        self.upsample = Upsample2d(rgb_channels, resolution)

    def forward(self, x: torch.Tensor, feature: torch.Tensor, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.conv2(self.conv1(x) + feature)
        return x, self.upsample(rgb) + self.torgb(x)


class Synthesis(nn.Module):
    def __init__(self, resolution: int, rgb_channels: int, ch_base: int, ch_max: int):
        super().__init__()
        self.resolutions = [2**i for i in range(2, _log2(resolution) + 1)]
        self.b4 = SynthesisBlockFirst(_channels(4, ch_base, ch_max), rgb_channels)
        for res, next_res in zip(self.resolutions[:-1], self.resolutions[1:]):
            block = SynthesisBlock(_channels(res, ch_base, ch_max), _channels(next_res, ch_base, ch_max), next_res,
                                   rgb_channels)
            setattr(self, f"b{next_res}", block)

    def forward(self, x: torch.Tensor, features: dict[int, torch.Tensor]) -> torch.Tensor:
        x, rgb = self.b4(x, features[4])
        for res in self.resolutions[1:]:
            x, rgb = getattr(self, f"b{res}")(x, features[res], rgb)
        return rgb


class MIGANGenerator(nn.Module):
    """``Generator(resolution)`` of the reference, with its Encoder/Synthesis ``ch_base`` and ``ch_max``."""

    def __init__(self, resolution: int = 512, ch_base: int = 32768, ch_max: int = 512):
        super().__init__()
        self.resolution = resolution
        self.synthesis = Synthesis(resolution, 3, ch_base, ch_max)
        self.encoder = Encoder(resolution, 4, ch_base, ch_max)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: [N, 4, R, R] = (known - 0.5, image * known), image in [-1, 1] -> RGB [N, 3, R, R] in ~[-1, 1]."""
        if x.ndim != 4 or x.shape[1] != 4 or tuple(x.shape[2:]) != (self.resolution, self.resolution):
            raise ValueError(f"MI-GAN {self.resolution} takes [N, 4, {self.resolution}, {self.resolution}] inputs, "
                             f"got {list(x.shape)}.")
        code, features = self.encoder(x)
        return self.synthesis(code, features)
