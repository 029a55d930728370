"""The layers of the StyleGAN2 generator (:mod:`core.models.stylegan2`), in plain torch ops.

FIR resampling (``upfirdn2d``), the fused bias + leaky ReLU, equalised-learning-rate linear
layers, the weight-(de)modulated convolution, noise injection and ToRGB, with the parameter
names of ``rosinality/stylegan2-pytorch``'s ``model.py``. Inference updates large activations in
place where autograd does not need them (:func:`can_overwrite`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def make_kernel(taps: Sequence[float]) -> torch.Tensor:
    """Separable 2-D FIR kernel ``outer(k, k)`` normalised to sum 1."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative = crop), convolve with ``kernel``, keep every ``down``-th pixel.

    The same padding is used on both axes; ``kernel`` is applied as a true convolution
    (flipped), depthwise on every channel.
    """
    b, c, h, w = x.shape
    kh, kw = kernel.shape
    if up > 1:
        # Zero insertion + convolution = a strided transposed convolution (polyphase, 1/up^2 of the work);
        # then pad or crop its border to the zero-inserted, padded and filtered size.
        x = F.conv_transpose2d(x.reshape(b * c, 1, h, w), kernel.to(x)[None, None], stride=up)
        x = F.pad(x, (pad[0] - kw + 1, up + pad[1] - kw, pad[0] - kh + 1, up + pad[1] - kh))
        x = x.reshape(b, c, x.shape[2], x.shape[3])
    else:
        # A contiguous depthwise weight (an expanded, stride-0 one sends oneDNN down a path ~8x
        # slower), and the convolution's own zero padding where it is symmetric (no padded copy).
        weight = torch.flip(kernel, (0, 1)).to(x)[None, None].repeat(c, 1, 1, 1)
        if pad[0] == pad[1] >= 0:
            x = F.conv2d(x, weight, padding=pad[0], groups=c)
        else:
            x = F.conv2d(F.pad(x, (pad[0], pad[1], pad[0], pad[1])), weight, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor, negative_slope: float = 0.2,
                     scale: float = math.sqrt(2)) -> torch.Tensor:
    """``leaky_relu(x + bias) * sqrt(2)`` with the bias broadcast over dim 1."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    if can_overwrite(x):
        return F.leaky_relu_(x.add_(bias.view(shape)), negative_slope).mul_(scale)
    return F.leaky_relu(x + bias.view(shape), negative_slope) * scale


def can_overwrite(x: torch.Tensor) -> bool:
    """Whether a fresh intermediate may be updated in place: autograd does not need it.

    At 1024x1024 every out-of-place elementwise step is one more pass over a 134 MB tensor,
    so inference updates the activations in place; with autograd the plain ops are used.
    """
    return not (torch.is_grad_enabled() and x.requires_grad)


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate (unscaled stored weights)."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class Blur(nn.Module):
    """FIR low-pass (``upfirdn2d`` with ``pad``); the kernel is scaled by ``upsample_factor**2``."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps) * upsample_factor**2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """x2 FIR upsampling of the ToRGB skip path: ``upfirdn2d(up=2, pad=(2, 1))`` for a 4-tap kernel."""

    def __init__(self, taps: Sequence[float], factor: int = 2):
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps) * factor**2)
        p = len(taps) - factor
        self.factor = factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Weight (de)modulated convolution: every sample is convolved with its own weight ``w * s``,
    demodulated by ``rsqrt(sum((w * s)**2) + 1e-8)`` per output channel.

    One sample: the weight itself is modulated (a [out, in, k, k] tensor, no pass over the
    activations). Several samples: the input is scaled by ``s``, one batched convolution
    shares the weight, and the output is scaled by the demodulation (the same result, without
    a grouped convolution).
    """

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False, blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.demodulate = demodulate
        self.upsample = upsample

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        s = self.modulation(style)  # [B, in]
        weight = self.weight[0] * self.scale  # [out, in, k, k]
        if x.shape[0] == 1:
            weight = weight * s[0][None, :, None, None]
            if self.demodulate:
                weight = weight * torch.rsqrt(weight.pow(2).sum((1, 2, 3)) + 1e-8)[:, None, None, None]
            if self.upsample:
                return self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2, padding=0))
            return F.conv2d(x, weight, padding=self.padding)
        x = x * s[:, :, None, None]
        if self.upsample:
            x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2, padding=0)
            x = self.blur(x)
        else:
            x = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # sum over (in, k, k) of (w * s)^2 = (s^2) @ (sum over (k, k) of w^2)^T
            demod = torch.rsqrt(s.pow(2) @ weight.pow(2).sum((2, 3)).t() + 1e-8)  # [B, out]
            x = x * demod[:, :, None, None]
        return x


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        if noise is None:
            noise = x.new_empty(x.shape[0], 1, x.shape[2], x.shape[3]).normal_()
        if can_overwrite(x):
            return x.add_(self.weight * noise)
        return x + self.weight * noise


class StyledConv(nn.Module):
    """Modulated conv -> noise -> bias + leaky ReLU(0.2) * sqrt(2)."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int,
                 upsample: bool = False, blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, upsample=upsample,
                                    blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise))


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class ToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) to RGB + bias, added to the upsampled previous RGB."""

    def __init__(self, in_channel: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, style)
        if can_overwrite(out):
            out = out.add_(self.bias)
            return out if skip is None else out.add_(self.upsample(skip))
        out = out + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConstantInput(nn.Module):
    def __init__(self, channel: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.expand(batch, -1, -1, -1)
