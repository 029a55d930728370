"""CycleGAN ResNet generator (Zhu et al., ICCV 2017, arXiv:1703.10593), official PyTorch layout.

``CycleGANResnet(ngf=64, n_blocks=9, norm="instance")`` is ``resnet_9blocks`` of
junyanz/pytorch-CycleGAN-and-pix2pix (Johnson et al.'s architecture): reflection pad + 7x7 conv,
two stride-2 3x3 convs, ``n_blocks`` residual blocks (``x + conv_block(x)``, no ReLU after the
sum), two stride-2 transposed convs, reflection pad + 7x7 conv + tanh. Input and output in
[-1, 1]; H and W should be multiples of 4 to come back at the input size (``forward`` pads by
reflection and crops back otherwise).

``norm``:
- ``"instance"``: ``InstanceNorm2d(affine=False)`` (the CycleGAN default): no parameters, per-image
  statistics always; convs carry biases.
- ``"instance_affine"``: InstanceNorm with a learnt scale and shift (the ``vintagify`` model).
- ``"batch"``: BatchNorm (pix2pix-style ResNet generators); convs before a norm have no bias.

``convert_state_dict`` accepts the published variants: the pre-0.4 CycleGAN files with
InstanceNorm running statistics (dropped: instance norm never uses them), blocks named
``.block.`` (vintagify) instead of ``.conv_block.``, the block layout with a Dropout slot
(``conv_block.6/.7`` instead of ``.5/.6``: junyanz ``use_dropout=True``, GAN Compression), a
``module.`` prefix, and BatchNorm entries without ``num_batches_tracked``.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from core.models import fill_bn_counters, strip_prefix

NORMS = ("instance", "instance_affine", "batch")


def _norm_layer(norm: str, channels: int) -> nn.Module:
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "instance_affine":
        return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)
    return nn.BatchNorm2d(channels)


class ResnetBlock(nn.Module):
    """``x + [pad, conv3x3, norm, ReLU, pad, conv3x3, norm](x)`` (indices 0..6 as in the reference)."""

    def __init__(self, dim: int, norm: str, bias: bool):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm_layer(norm, dim), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm_layer(norm, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class CycleGANResnet(nn.Module):
    """``ResnetGenerator(input_nc, output_nc, ngf, norm_layer, use_dropout=False, n_blocks, 'reflect')``."""

    multiple = 4  # H and W multiples that come back at the same size without padding

    def __init__(self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm: str = "instance"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}; got {norm!r}.")
        bias = norm != "batch"
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias), _norm_layer(norm, ngf), nn.ReLU(),
        ]
        for i in range(2):  # downsampling: 1 -> 2 -> 4 times ngf
            mult = 2 ** i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                       _norm_layer(norm, ngf * mult * 2), nn.ReLU()]
        layers += [ResnetBlock(ngf * 4, norm, bias) for _ in range(n_blocks)]
        for i in range(2):  # upsampling: 4 -> 2 -> 1 times ngf
            mult = 2 ** (2 - i)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1,
                                          bias=bias),
                       _norm_layer(norm, ngf * mult // 2), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, input_nc, H, W] in [-1, 1] -> [N, output_nc, H, W] in [-1, 1]."""
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % 4, (-width) % 4
        if pad_h or pad_w:
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        return self.model(x)[..., :height, :width]

    @staticmethod
    def convert_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Map the published key variants onto this module's names (see the module docstring)."""
        state_dict = {k.replace(".block.", ".conv_block."): v for k, v in strip_prefix(state_dict).items()}
        # Blocks saved with a Dropout slot: second conv at .6 and its norm at .7 -> .5 / .6.
        blocks = {m.group(1) for k in state_dict if (m := re.match(r"(model\.\d+)\.conv_block\.7\.", k))}
        blocks |= {m.group(1) for k, v in state_dict.items()
                   if (m := re.match(r"(model\.\d+)\.conv_block\.6\.weight$", k)) and v.ndim == 4}
        if blocks:
            renamed = {}
            for key, value in state_dict.items():
                m = re.match(r"(model\.\d+)\.conv_block\.(\d+)\.(.+)$", key)
                if m and m.group(1) in blocks and m.group(2) in ("6", "7"):
                    key = f"{m.group(1)}.conv_block.{int(m.group(2)) - 1}.{m.group(3)}"
                renamed[key] = value
            state_dict = renamed
        # Norm layers: running statistics without a weight are a legacy non-affine InstanceNorm
        # (pre-0.4 saves): drop them. With a weight it is a BatchNorm: fill num_batches_tracked.
        out = dict(state_dict)
        for key in state_dict:
            layer = key[: -len("running_mean")]
            if key.endswith(".running_mean") and layer + "weight" not in state_dict:
                for suffix in ("running_mean", "running_var", "num_batches_tracked"):
                    out.pop(layer + suffix, None)
        return fill_bn_counters(out)
