"""An encoder from a generator's image back to its latent z ("back to z", Zhu et al., ECCV 2016).

Trained by this project on the generator's own samples (``python -m core.train encoder``): the
loss is the latent error ``|E(G(z)) - z|^2`` plus a pixel error ``|G(E(G(z))) - G(z)|^2`` through
the frozen generator. Input: NCHW RGB in [-1, 1] (the generator's output range), ``img_size``
square; output: z [N, nz].

Layers: ``depth`` 4x4 stride-2 convolutions (``width`` channels, doubling up to 8x) with
BatchNorm (not on the first) and LeakyReLU(0.2), down to 4x4; flatten; a linear layer to nz.
The DCGAN discriminator's layout, ending in a latent instead of one logit.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LatentEncoder(nn.Module):
    def __init__(self, nz: int = 100, width: int = 32, img_size: int = 64, nc: int = 3):
        super().__init__()
        if img_size < 8 or img_size & (img_size - 1):
            raise ValueError(f"img_size must be a power of two >= 8, got {img_size}.")
        self.nz, self.img_size = nz, img_size
        depth = int(math.log2(img_size)) - 2  # down to 4x4
        layers: list[nn.Module] = []
        cin = nc
        for i in range(depth):
            cout = width * min(2**i, 8)
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin * 16, nz)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """z [N, nz] for images [N, nc, img_size, img_size] in [-1, 1]."""
        if image.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(f"The encoder takes {self.img_size}x{self.img_size} images, got "
                             f"{tuple(image.shape[-2:])}.")
        return self.head(self.features(image).flatten(1))
