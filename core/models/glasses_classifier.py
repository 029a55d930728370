"""A small eyeglasses / no-eyeglasses classifier for 64x64 faces aligned like GeneGAN's input.

Trained by this project on synthetic data (``python -m core.train glasses_classifier``) to judge
GeneGAN's outputs and to warn when the app's "without glasses" photo already wears glasses.
Input: NCHW RGB in [0, 255] (GeneGAN's range); output: one logit per image (> 0 = glasses).

Layers: four 3x3 stride-2 convolutions (``width``, 2x, 4x, 4x channels) each with BatchNorm and
ReLU (64 -> 4 px), flatten, a linear layer to 1. The spatial layout is kept (no global pooling):
the faces are aligned, so where a dark line sits matters.
"""

from __future__ import annotations

import torch
from torch import nn


class GlassesClassifier(nn.Module):
    def __init__(self, width: int = 16, img_size: int = 64):
        super().__init__()
        widths = [width, width * 2, width * 4, width * 4]
        layers: list[nn.Module] = []
        cin = 3
        for cout in widths:
            layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        self.features = nn.Sequential(*layers)
        side = img_size // 16
        self.head = nn.Linear(widths[-1] * side * side, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits [N] for images [N, 3, 64, 64] in [0, 255]."""
        h = self.features(image / 127.5 - 1.0)
        return self.head(h.flatten(1)).squeeze(1)

    @torch.no_grad()
    def probability(self, image: torch.Tensor) -> torch.Tensor:
        """P(glasses) in [0, 1] for each image."""
        return torch.sigmoid(self(image))
