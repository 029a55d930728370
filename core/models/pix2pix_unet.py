"""pix2pix U-Net generator (Isola et al., CVPR 2017, arXiv:1611.07004), official PyTorch layout.

``Pix2PixUNet(num_downs=8, ngf=64)`` is ``unet_256`` of junyanz/pytorch-CycleGAN-and-pix2pix:
``num_downs`` stride-2 4x4 convolutions down to a 1x1 bottleneck (so H and W must be
multiples of ``2**num_downs``), BatchNorm, ReLU/LeakyReLU(0.2), skip connections by channel
concatenation, ``Dropout(0.5)`` in the ``num_downs - 5`` intermediate ngf*8 blocks, tanh output
in [-1, 1]. The nesting (``model.model.1.model.3...``) reproduces the published key names, so
the official ``.pth`` files load strictly.

Two inference modes (see ``forward``):

- eval mode (``model.eval()``, the default after ``core.models.load``): BatchNorm uses its
  running statistics and dropout is off. Deterministic.
- paper mode (``batch_stats=True, dropout=True``): what the paper and the official ``test.py``
  (without ``--eval``) do: BatchNorm normalises with the statistics of the test image itself
  (each image of a batch with its own, as the reference computes with its batch size of 1) and
  dropout stays on as the noise source, so one sketch gives different outputs per seed.
  Paper mode never changes the model's buffers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.models import fill_bn_counters, strip_prefix


def _per_image_batch_norm(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """BatchNorm with the statistics of each image separately (= the reference at batch size 1)."""
    n, c, h, w = x.shape
    weight = bn.weight.repeat(n) if bn.weight is not None else None
    bias = bn.bias.repeat(n) if bn.bias is not None else None
    y = F.batch_norm(x.reshape(1, n * c, h, w), None, None, weight, bias, training=True, eps=bn.eps)
    return y.reshape(n, c, h, w)


class _Options:
    """How BatchNorm and Dropout behave in one forward pass."""

    def __init__(self, batch_stats: bool, dropout: bool, generator: torch.Generator | None, update_running: bool):
        self.batch_stats = batch_stats
        self.dropout = dropout
        self.generator = generator
        self.update_running = update_running


class UNetBlock(nn.Module):
    """One level of the U-Net: down conv -> inner block -> up conv, plus the skip (``UnetSkipConnectionBlock``).

    ``self.model`` is a ``Sequential`` whose indices match the reference:
    outermost ``[down, inner, ReLU, up(bias), Tanh]``; innermost ``[LReLU, down, ReLU, up, BN]``;
    others ``[LReLU, down, BN, inner, ReLU, up, BN, (Dropout)]``.
    """

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None, inner: UNetBlock | None = None,
                 outermost: bool = False, innermost: bool = False, use_dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        down = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=False)
        if outermost:
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=True)
            layers = [down, inner, nn.ReLU(), up, nn.Tanh()]
        elif innermost:
            up = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=False)
            layers = [nn.LeakyReLU(0.2), down, nn.ReLU(), up, nn.BatchNorm2d(outer_nc)]
        else:
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=False)
            layers = [nn.LeakyReLU(0.2), down, nn.BatchNorm2d(inner_nc), inner, nn.ReLU(), up, nn.BatchNorm2d(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def run(self, x: torch.Tensor, opts: _Options) -> torch.Tensor:
        y = x
        for layer in self.model:
            if isinstance(layer, UNetBlock):
                y = layer.run(y, opts)
            elif isinstance(layer, nn.BatchNorm2d):
                y = self._norm(layer, y, opts)
            elif isinstance(layer, nn.Dropout):
                y = self._dropout(layer, y, opts)
            else:
                y = layer(y)
        return y if self.outermost else torch.cat([x, y], 1)

    @staticmethod
    def _norm(bn: nn.BatchNorm2d, x: torch.Tensor, opts: _Options) -> torch.Tensor:
        if not opts.batch_stats:
            return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False, eps=bn.eps)
        if opts.update_running:  # training: track the mean of the per-image statistics for eval mode
            with torch.no_grad():
                mean = x.mean(dim=(2, 3)).mean(0)
                var = x.var(dim=(2, 3), unbiased=x.shape[2] * x.shape[3] > 1).mean(0)
                bn.running_mean.lerp_(mean, bn.momentum)
                bn.running_var.lerp_(var, bn.momentum)
                bn.num_batches_tracked += 1
        return _per_image_batch_norm(x, bn)

    @staticmethod
    def _dropout(layer: nn.Dropout, x: torch.Tensor, opts: _Options) -> torch.Tensor:
        if not opts.dropout or layer.p == 0:
            return x
        if opts.generator is None:
            return F.dropout(x, layer.p, training=True)
        keep = torch.empty(x.shape, dtype=x.dtype).bernoulli_(1 - layer.p, generator=opts.generator)
        return x * keep.to(x.device) / (1 - layer.p)


class Pix2PixUNet(nn.Module):
    """``UnetGenerator(input_nc, output_nc, num_downs, ngf, norm_layer=BatchNorm2d, use_dropout)``."""

    def __init__(self, input_nc: int = 3, output_nc: int = 3, num_downs: int = 8, ngf: int = 64,
                 use_dropout: bool = True):
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be at least 5, got {num_downs}.")
        self.num_downs = num_downs
        block = UNetBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = UNetBlock(ngf * 8, ngf * 8, inner=block, use_dropout=use_dropout)
        block = UNetBlock(ngf * 4, ngf * 8, inner=block)
        block = UNetBlock(ngf * 2, ngf * 4, inner=block)
        block = UNetBlock(ngf, ngf * 2, inner=block)
        self.model = UNetBlock(output_nc, ngf, input_nc=input_nc, inner=block, outermost=True)

    @property
    def multiple(self) -> int:
        """H and W must be multiples of this (one halving per level, down to a 1x1 bottleneck)."""
        return 2 ** self.num_downs

    def forward(self, x: torch.Tensor, *, batch_stats: bool | None = None, dropout: bool | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Translate ``x`` ([N, input_nc, H, W] in [-1, 1]) to [N, output_nc, H, W] in [-1, 1].

        ``batch_stats`` / ``dropout`` default to ``self.training``. ``batch_stats=True`` normalises
        each image with its own statistics (paper mode; in training mode it also updates the
        running statistics used by eval mode). ``generator`` (CPU) makes the dropout masks
        reproducible.
        """
        if x.shape[-1] % self.multiple or x.shape[-2] % self.multiple:
            raise ValueError(
                f"pix2pix U-Net with {self.num_downs} downsamplings needs H and W divisible by {self.multiple}; "
                f"got {tuple(x.shape[-2:])}.")
        opts = _Options(
            batch_stats=self.training if batch_stats is None else batch_stats,
            dropout=self.training if dropout is None else dropout,
            generator=generator,
            update_running=self.training and torch.is_grad_enabled(),
        )
        return self.model.run(x, opts)

    @staticmethod
    def convert_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Strip a ``module.`` prefix and add the ``num_batches_tracked`` that old files lack."""
        return fill_bn_counters(strip_prefix(state_dict))
