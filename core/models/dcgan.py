"""DCGAN generator (Radford et al., 2016, arXiv:1511.06434), 64x64 layout of the PyTorch tutorial.

Input z ~ N(0, 1) of shape [N, nz, 1, 1] (a flat [N, nz] is accepted); output [N, nc, 64, 64]
in [-1, 1] (tanh). Keys match the published ``netG`` state dict: ``main.{0,3,6,9,12}`` are the
transposed convolutions (no bias) and ``main.{1,4,7,10}`` their BatchNorms.
"""

from __future__ import annotations

import torch
from torch import nn

from core.models import strip_prefix


class DCGANGenerator(nn.Module):
    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 3):
        super().__init__()
        self.nz = nz
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),  # 1 -> 4
            nn.BatchNorm2d(ngf * 8),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),  # 4 -> 8
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),  # 8 -> 16
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),  # 16 -> 32
            nn.BatchNorm2d(ngf),
            nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),  # 32 -> 64
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.ndim == 2:
            z = z[:, :, None, None]
        return self.main(z)

    @staticmethod
    def convert_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Accept nets saved inside ``nn.DataParallel`` (every key prefixed ``module.``)."""
        return strip_prefix(state_dict)
