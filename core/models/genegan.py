"""GeneGAN (Zhou et al., BMVC 2017, arXiv:1705.04932), 64x64 layout of the official TensorFlow code.

An encoder (the *splitter*) maps an image to an 8x8 feature map whose channels are split in two:
the first ``(1 - second_ratio)`` of them are the *background* ``A`` (everything but the attribute)
and the last ``second_ratio`` of them the *object* ``x`` (the attribute, e.g. eyeglasses). The
*joiner* decodes ``concat(A, x)`` back to an image. Swapping the object parts of a face with
the attribute and one without (object zero) gives each face the other's attribute state.

Value range (as in the official graph): images are NCHW float tensors in **[0, 255]**, RGB.
The splitter (and the critic) divide by 255 first; the joiner returns ``(tanh(.) + 1) * 255 / 2``.

Layers (official widths ``ch=(128, 256, 512)``; ``ch`` may be scaled for smaller models):

- splitter: conv1 3->ch0 (4x4 s2, no bias) + lrelu 0.2; conv2 ch0->ch1 + BN + lrelu;
  conv3 ch1->ch2 + BN + lrelu (64 -> 8 px); split on channels, the object is the LAST part;
- joiner: deconv1 ch2->ch2 + BN + ReLU; deconv2 ch2->ch1 + BN + ReLU; deconv3 ch1->3;
  ``+ out_bias``; ``(tanh + 1) * 127.5``;
- critic (training only, not part of the registry state): conv1 3->ch0 + lrelu, conv2..4
  (ch1, ch2, ch2) + BN + lrelu, flatten in NHWC order, linear -> 1 (a WGAN critic, no sigmoid).

Convolutions have no bias; BatchNorm uses eps 1e-3 and momentum 0.01 (TF ``momentum=0.99``);
TF's SAME padding for 4x4 stride-2 (de)convolutions on even sizes is a padding of 1.

State dicts: this module's own names (``splitter.conv1.weight``, ``splitter.bn2.*``,
``joiner.deconv1.weight``, ``joiner.bn1.*``, ``joiner.out_bias``) or the official TF variable
names (``G_splitter/conv1/W`` [kh,kw,in,out], ``G_joiner/deconv1/W`` [kh,kw,out,in],
``.../batch_normalization/{gamma,beta,moving_mean,moving_variance}``, ``G_joiner/b`` [1,1,1,3]);
:meth:`GeneGAN.convert_state_dict` detects which one it got. Critic variables (``D_Ax/...``,
``D_Be/...``), optimiser slots (``.../RMSProp``, ``.../RMSProp_1``) and ``global_step`` that a
``tf.train.Saver`` checkpoint also holds are dropped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from core.models import fill_bn_counters

BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # PyTorch convention: TF's decay 0.99


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=False)


def _deconv(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False)


def _add_encoder_layers(module: nn.Module, widths: Sequence[int]) -> None:
    """``conv1..convL`` (4x4, stride 2) and ``bn2..bnL``: the encoder of the splitter and of the critics."""
    module.depth = len(widths)
    cin = 3
    for i, cout in enumerate(widths, start=1):
        setattr(module, f"conv{i}", _conv(cin, cout))
        if i > 1:
            setattr(module, f"bn{i}", _bn(cout))
        cin = cout


def _encode(module: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """Image in [0, 255] through :func:`_add_encoder_layers`' layers: conv, BatchNorm (not after the first), LReLU 0.2."""
    h = image / 255.0
    for i in range(1, module.depth + 1):
        h = getattr(module, f"conv{i}")(h)
        if i > 1:
            h = getattr(module, f"bn{i}")(h)
        h = F.leaky_relu(h, 0.2)
    return h


class GeneGANSplitter(nn.Module):
    """Image [N,3,H,W] in [0,255] -> features [N, ch[-1], H/2^L, W/2^L] (L = len(ch))."""

    def __init__(self, ch: Sequence[int] = (128, 256, 512)):
        super().__init__()
        _add_encoder_layers(self, ch)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return _encode(self, image)


class GeneGANJoiner(nn.Module):
    """Features [N, ch[-1], h, w] -> image [N,3,h*2^L,w*2^L] in [0,255]."""

    def __init__(self, ch: Sequence[int] = (128, 256, 512)):
        super().__init__()
        self.depth = len(ch)
        outs = [ch[-1]] + list(reversed(ch[1:-1])) + [3]  # (512, 256, 3) for the official widths
        cin = ch[-1]
        for i, cout in enumerate(outs, start=1):
            setattr(self, f"deconv{i}", _deconv(cin, cout))
            if i < self.depth:
                setattr(self, f"bn{i}", _bn(cout))
            cin = cout
        self.out_bias = nn.Parameter(torch.zeros(3))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = features
        for i in range(1, self.depth + 1):
            h = getattr(self, f"deconv{i}")(h)
            if i < self.depth:
                h = F.relu(getattr(self, f"bn{i}")(h))
        h = h + self.out_bias.view(1, 3, 1, 1)
        return (torch.tanh(h) + 1.0) * (255.0 / 2.0)


class GeneGANCritic(nn.Module):
    """WGAN critic of the official code (``D_Ax`` / ``D_Be``): image in [0,255] -> score [N]."""

    def __init__(self, ch: Sequence[int] = (128, 256, 512), img_size: int = 64):
        super().__init__()
        widths = list(ch) + [ch[-1]]
        _add_encoder_layers(self, widths)
        side = img_size // 2 ** self.depth
        self.fct = nn.Linear(widths[-1] * side * side, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h = _encode(self, image)
        # TF flattens NHWC; keeping that order lets fct/W [8192, 1] load as a plain transpose.
        return self.fct(h.permute(0, 2, 3, 1).flatten(1)).squeeze(1)

    @staticmethod
    def convert_state_dict(state_dict: Mapping, scope: str = "D_Ax") -> dict[str, torch.Tensor]:
        """Official critic variables under ``scope`` (``D_Ax`` or ``D_Be``) -> this module's names."""
        out: dict[str, torch.Tensor] = {}
        for key, value in state_dict.items():
            if not key.startswith(scope + "/") or "RMSProp" in key:
                continue
            t = torch.as_tensor(np.asarray(value), dtype=torch.float32)
            name = key[len(scope) + 1:]
            if name == "fct/W":
                out["fct.weight"] = t.t().contiguous()
            elif name == "fct/b":
                out["fct.bias"] = t.reshape(1)
            else:
                out.update(_convert_conv_or_bn(name, t, prefix="", conv="conv"))
        return fill_bn_counters(out)


class GeneGAN(nn.Module):
    """Splitter + joiner (the generator of the official code; the registry's ``genegan``).

    ``ch``: encoder widths (official ``(128, 256, 512)``; ``(32, 64, 128)`` is quarter width);
    ``second_ratio``: fraction of the last feature channels that form the object part (0.25);
    ``img_size``: input side (64; each entry of ``ch`` halves it).
    """

    def __init__(self, ch: Sequence[int] = (128, 256, 512), second_ratio: float = 0.25, img_size: int = 64):
        super().__init__()
        ch = tuple(int(c) for c in ch)
        if img_size % 2 ** len(ch):
            raise ValueError(f"img_size {img_size} is not divisible by 2**{len(ch)}")
        self.ch, self.img_size, self.second_ratio = ch, img_size, second_ratio
        self.object_channels = int(ch[-1] * second_ratio)
        if not 0 < self.object_channels < ch[-1]:
            raise ValueError(f"second_ratio {second_ratio} leaves no background or no object channel")
        self.splitter = GeneGANSplitter(ch)
        self.joiner = GeneGANJoiner(ch)

    def split(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Image [N,3,H,W] in [0,255] -> (background [N,C-c,h,w], object [N,c,h,w])."""
        features = self.splitter(image)
        return features[:, : -self.object_channels], features[:, -self.object_channels:]

    def join(self, background: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
        """(background, object) -> image [N,3,H,W] in [0,255]."""
        return self.joiner(torch.cat([background, obj], dim=1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``join(*split(image))``, in [0,255]."""
        return self.join(*self.split(image))

    @staticmethod
    def convert_state_dict(state_dict: Mapping) -> dict[str, torch.Tensor]:
        """Own names pass through (``num_batches_tracked`` filled if absent); TF names are converted."""
        if not any("/" in k for k in state_dict):
            return fill_bn_counters({k: torch.as_tensor(v) for k, v in state_dict.items()})
        out: dict[str, torch.Tensor] = {}
        for key, value in state_dict.items():
            if key.startswith(("D_Ax/", "D_Be/")) or "RMSProp" in key or key in _TF_EXTRAS:
                continue  # critic variables and optimiser state: documented extras
            t = torch.as_tensor(np.asarray(value), dtype=torch.float32)
            if key == "G_joiner/b":
                out["joiner.out_bias"] = t.reshape(3)
            elif key.startswith("G_splitter/"):
                out.update(_convert_conv_or_bn(key[len("G_splitter/"):], t, prefix="splitter.", conv="conv"))
            elif key.startswith("G_joiner/"):
                out.update(_convert_conv_or_bn(key[len("G_joiner/"):], t, prefix="joiner.", conv="deconv"))
            else:
                out[key] = t  # unknown: left in place so that the strict load names it
        return fill_bn_counters(out)


_TF_EXTRAS = ("global_step", "beta1_power", "beta2_power")  # optimiser bookkeeping in tf.train.Saver files
_TF_BN = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def _convert_conv_or_bn(name: str, t: torch.Tensor, prefix: str, conv: str) -> dict[str, torch.Tensor]:
    """``conv2/W`` or ``conv2/batch_normalization/gamma`` (scope-relative) -> own key and layout.

    TF conv filters are [kh,kw,in,out] and conv2d_transpose filters [kh,kw,out,in]; both become
    PyTorch's layout ([out,in,kh,kw] for Conv2d, [in,out,kh,kw] for ConvTranspose2d) with the
    same permutation (3, 2, 0, 1).
    """
    layer, _, rest = name.partition("/")
    if not layer.startswith(conv) or not layer[len(conv):].isdigit():
        return {prefix + name: t}
    index = int(layer[len(conv):])
    if rest == "W":
        return {f"{prefix}{conv}{index}.weight": t.permute(3, 2, 0, 1).contiguous()}
    bn_layer, _, var = rest.partition("/")
    if bn_layer == "batch_normalization" and var in _TF_BN:
        return {f"{prefix}bn{index}.{_TF_BN[var]}": t}
    return {prefix + name: t}
