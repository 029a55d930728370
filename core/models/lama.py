"""LaMa generator (Suvorov et al., WACV 2022, arXiv:2109.07161): the FFC ResNet of big-lama.

A ResNet generator whose blocks are Fast Fourier Convolutions (FFC): the channels split into a
local part (ordinary 3x3 convolutions) and a global part that is mixed in the frequency domain
(``FourierUnit``: real FFT of the whole feature map, a 1x1 convolution on the stacked real and
imaginary parts, inverse FFT), which gives every block an image-wide receptive field.

Defaults are the big-lama configuration (``configs/training/big-lama.yaml`` of advimman/lama):
4 input channels (masked RGB + mask), ngf 64, 3 downsamplings, 18 blocks with 75 % global
channels, BatchNorm, ReLU, reflect padding, sigmoid output.

Input: ``cat([image * (1 - mask), mask], dim=1)``, image in [0, 1], mask 1 = hole, H and W
multiples of ``2 ** n_downsampling`` (8); output RGB in [0, 1]. Keys are those of the
published generator (``model.1.ffc.convl2l.weight`` ...; the Lightning checkpoint stores them
under ``generator.``). Branches with no channels hold no module (the reference's
``nn.Identity`` placeholders have no keys either).
"""

from __future__ import annotations

import torch
from torch import nn

Pair = tuple[torch.Tensor, torch.Tensor | None]


class FourierUnit(nn.Module):
    """rfft2 (ortho) -> 1x1 conv + BN + ReLU on interleaved (re, im) channels -> irfft2."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv_layer = nn.Conv2d(channels * 2, channels * 2, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(channels * 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        # FFTs run in float32: half-precision FFTs only support power-of-two sizes.
        spectrum = torch.fft.rfftn(x.float(), dim=(-2, -1), norm="ortho")
        # [B, C, 2, H, W/2+1] viewed as [B, 2C, ...]: channels c0.re, c0.im, c1.re, c1.im, ...
        stacked = torch.stack((spectrum.real, spectrum.imag), dim=2).reshape(batch, channels * 2, height, -1)
        mixed = self.relu(self.bn(self.conv_layer(stacked.to(x.dtype)))).float()
        mixed = mixed.reshape(batch, channels, 2, height, -1)
        spectrum = torch.complex(mixed[:, :, 0], mixed[:, :, 1])
        return torch.fft.irfftn(spectrum, s=(height, width), dim=(-2, -1), norm="ortho").to(x.dtype)


class SpectralTransform(nn.Module):
    """Global-to-global path: 1x1 conv to half the channels, ``x + FourierUnit(x)``, 1x1 conv back."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, out_channels // 2, kernel_size=1, bias=False),
            nn.BatchNorm2d(out_channels // 2),
            nn.ReLU(inplace=True),
        )
        self.fu = FourierUnit(out_channels // 2)
        self.conv2 = nn.Conv2d(out_channels // 2, out_channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(x + self.fu(x))


class FFC(nn.Module):
    """Local/global split convolution: ``l = l2l(l) + g2l(g)``, ``g = l2g(l) + g2g(g)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float, ratio_gout: float,
                 stride: int = 1, padding: int = 0):
        super().__init__()
        in_g = int(in_channels * ratio_gin)
        out_g = int(out_channels * ratio_gout)
        in_l, out_l = in_channels - in_g, out_channels - out_g

        def conv(cin: int, cout: int) -> nn.Conv2d | None:
            if cin == 0 or cout == 0:
                return None
            return nn.Conv2d(cin, cout, kernel_size, stride, padding, bias=False, padding_mode="reflect")

        self.convl2l = conv(in_l, out_l)
        self.convl2g = conv(in_l, out_g)
        self.convg2l = conv(in_g, out_l)
        self.convg2g = SpectralTransform(in_g, out_g) if in_g and out_g else None
        self.out_local, self.out_global = out_l, out_g

    def forward(self, x: Pair) -> Pair:
        x_l, x_g = x
        out_l = out_g = None
        if self.out_local:
            out_l = _sum(self.convl2l, x_l, self.convg2l, x_g)
        if self.out_global:
            out_g = _sum(self.convl2g, x_l, self.convg2g, x_g)
        return out_l, out_g


def _sum(local_path: nn.Module | None, x_l: torch.Tensor | None, global_path: nn.Module | None,
         x_g: torch.Tensor | None) -> torch.Tensor:
    parts = [path(x) for path, x in ((local_path, x_l), (global_path, x_g)) if path is not None]
    return parts[0] if len(parts) == 1 else parts[0] + parts[1]


class FFC_BN_ACT(nn.Module):  # noqa: N801 (the reference's class name; its attribute names are the keys)
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, ratio_gin: float, ratio_gout: float,
                 stride: int = 1, padding: int = 0):
        super().__init__()
        self.ffc = FFC(in_channels, out_channels, kernel_size, ratio_gin, ratio_gout, stride, padding)
        self.bn_l = nn.BatchNorm2d(self.ffc.out_local) if self.ffc.out_local else None
        self.bn_g = nn.BatchNorm2d(self.ffc.out_global) if self.ffc.out_global else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor | Pair) -> Pair:
        if isinstance(x, torch.Tensor):
            x = (x, None)
        x_l, x_g = self.ffc(x)
        if self.bn_l is not None:
            x_l = self.act(self.bn_l(x_l))
        if self.bn_g is not None:
            x_g = self.act(self.bn_g(x_g))
        return x_l, x_g


class FFCResnetBlock(nn.Module):
    def __init__(self, dim: int, ratio_gin: float, ratio_gout: float):
        super().__init__()
        self.conv1 = FFC_BN_ACT(dim, dim, 3, ratio_gin, ratio_gout, padding=1)
        self.conv2 = FFC_BN_ACT(dim, dim, 3, ratio_gin, ratio_gout, padding=1)

    def forward(self, x: Pair) -> Pair:
        id_l, id_g = x
        x_l, x_g = self.conv2(self.conv1(x))
        return id_l + x_l, (id_g + x_g) if x_g is not None else None


class ConcatTupleLayer(nn.Module):
    def forward(self, x: Pair) -> torch.Tensor:
        x_l, x_g = x
        return x_l if x_g is None else torch.cat((x_l, x_g), dim=1)


class LamaGenerator(nn.Module):
    """``FFCResNetGenerator`` of advimman/lama with the big-lama configuration as defaults.

    ``ratio_gin``/``ratio_gout`` are the global-channel ratios of the resnet blocks (the last
    downsampling layer switches to ``ratio_gin``); the stem and the other downsampling layers
    are purely local, as in big-lama.
    """

    def __init__(self, input_nc: int = 4, output_nc: int = 3, ngf: int = 64, n_downsampling: int = 3,
                 n_blocks: int = 18, ratio_gin: float = 0.75, ratio_gout: float = 0.75, max_features: int = 1024,
                 add_out_act: str | bool = "sigmoid"):
        super().__init__()
        self.multiple = 2 ** n_downsampling
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), FFC_BN_ACT(input_nc, ngf, 7, 0, 0)]
        for i in range(n_downsampling):
            cin, cout = min(max_features, ngf * 2 ** i), min(max_features, ngf * 2 ** (i + 1))
            gout = ratio_gin if i == n_downsampling - 1 else 0
            layers.append(FFC_BN_ACT(cin, cout, 3, 0, gout, stride=2, padding=1))
        bottleneck = min(max_features, ngf * 2 ** n_downsampling)
        layers += [FFCResnetBlock(bottleneck, ratio_gin, ratio_gout) for _ in range(n_blocks)]
        layers.append(ConcatTupleLayer())
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            cin, cout = min(max_features, ngf * mult), min(max_features, ngf * mult // 2)
            layers += [nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1),
                       nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7)]
        if add_out_act:
            activations = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, True: nn.Tanh}
            if add_out_act not in activations:
                raise ValueError(f"add_out_act must be 'sigmoid', 'tanh', True or False, not {add_out_act!r}.")
            layers.append(activations[add_out_act]())
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: [N, 4, H, W] = cat(image * (1 - mask), mask), H and W multiples of ``self.multiple``."""
        if x.shape[-2] % self.multiple or x.shape[-1] % self.multiple:
            raise ValueError(f"LaMa needs H and W divisible by {self.multiple}, got {tuple(x.shape[-2:])}; pad first.")
        return self.model(x)

    @staticmethod
    def convert_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Strip the wrappers published files put around the generator's own ``model.<i>`` keys.

        ``generator.`` (Lightning checkpoint, when read without ``select_prefix``),
        ``model.generator.`` (``bin/to_jit.py``'s TorchScript: a wrapper around the training
        module), ``model.`` (a wrapper around the bare generator) and ``module.`` (DataParallel).
        """
        state = dict(state_dict)
        for _ in range(3):
            if not state or all(k.startswith("model.") and k[len("model."):][:1].isdigit() for k in state):
                break
            for prefix in ("model.generator.", "generator.", "module.", "model."):
                if all(k.startswith(prefix) for k in state):
                    state = {k[len(prefix):]: v for k, v in state.items()}
                    break
            else:
                break
        return state
