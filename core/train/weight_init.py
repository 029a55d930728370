"""The weight initialisation of the reference GAN trainers (pix2pix, GeneGAN)."""

from __future__ import annotations

from torch import nn


def init_weights(module: nn.Module, batchnorm_std: float | None = None) -> None:
    """(De)convolution and linear weights N(0, 0.02), their biases 0, as the reference code.

    With ``batchnorm_std`` BatchNorm weights are drawn from N(1, batchnorm_std) and their biases
    zeroed (pix2pix's "normal" init uses 0.02); without it BatchNorm keeps PyTorch's weight 1 and
    bias 0 (GeneGAN's official code) and draws no random numbers.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif batchnorm_std is not None and isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, batchnorm_std)
            nn.init.zeros_(m.bias)
