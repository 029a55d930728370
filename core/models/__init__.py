"""Architecture registry: ``build(arch, **config)`` and ``load(arch, state_dict, **config)``.

Each architecture lives in its own module and is imported only when first used. A class may
define ``convert_state_dict(state_dict) -> state_dict`` (a static method) that maps the
published checkpoint's key naming and layout onto the module's own and drops the documented
extra keys; loading is then strict: a missing, unexpected or mis-shaped tensor raises.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

import torch
from torch import nn

# name -> "module:Class" (relative to core.models). Add new architectures here.
ARCHITECTURES: dict[str, str] = {
    "cyclegan_resnet": "cyclegan_resnet:CycleGANResnet",
    "dcgan": "dcgan:DCGANGenerator",
    "lama": "lama:LamaGenerator",
    "stylegan2": "stylegan2:StyleGAN2Generator",
    "genegan": "genegan:GeneGAN",
    "glasses_classifier": "glasses_classifier:GlassesClassifier",
    "pix2pix_unet": "pix2pix_unet:Pix2PixUNet",
}


class StateDictMismatchError(ValueError):
    """A checkpoint does not fit the architecture (missing/unexpected keys or wrong shapes)."""


def architecture_class(arch: str) -> type[nn.Module]:
    if arch not in ARCHITECTURES:
        raise ValueError(f"Unknown architecture {arch!r}. Known architectures: {', '.join(sorted(ARCHITECTURES))}.")
    module_name, class_name = ARCHITECTURES[arch].split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)


def build(arch: str, **config) -> nn.Module:
    """Instantiate ``arch`` with its constructor keyword arguments (random init)."""
    return architecture_class(arch)(**config)


def _check_shapes(model: nn.Module, state_dict: Mapping[str, torch.Tensor], arch: str) -> dict[str, torch.Tensor]:
    """The module's own state (meta tensors), after checking that ``state_dict`` fits it exactly."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    wrong = [
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(
                f"{len(unexpected)} unexpected key(s): {', '.join(unexpected[:8])}{' ...' if len(unexpected) > 8 else ''}"
            )
        if wrong:
            parts.append(f"{len(wrong)} shape mismatch(es): {'; '.join(wrong[:4])}{' ...' if len(wrong) > 4 else ''}")
        raise StateDictMismatchError(f"The weights do not fit architecture {arch!r}: " + "; ".join(parts) + ".")
    return own


def skeleton(arch: str, **config) -> nn.Module:
    """``arch`` built on the meta device: shapes only, no memory and no random initialisation."""
    with torch.device("meta"):
        return architecture_class(arch)(**config)


def load(arch: str, state_dict: Mapping[str, torch.Tensor], *, copy: bool = True, **config) -> nn.Module:
    """Build ``arch`` and load ``state_dict`` (published key naming accepted) strictly; eval mode.

    The module is built on the meta device (:func:`skeleton`) and takes the checkpoint's
    tensors, cast to the module's dtypes. With ``copy=False`` tensors that already have the
    right dtype and layout are used as they are (for freshly read, owned state dicts); by
    default every tensor is copied, so the caller's dict stays independent.
    """
    cls = architecture_class(arch)
    model = skeleton(arch, **config)
    convert = getattr(cls, "convert_state_dict", None)
    converted = convert(dict(state_dict)) if convert is not None else dict(state_dict)
    own = _check_shapes(model, converted, arch)
    taken = {
        k: v.to(dtype=own[k].dtype, memory_format=torch.contiguous_format, copy=copy or not v.is_contiguous())
        for k, v in converted.items()
    }
    model.load_state_dict(taken, strict=True, assign=True)
    if any(t.is_meta for t in [*model.parameters(), *model.buffers()]):
        # a buffer the checkpoint does not hold (not persistent): build the module for real
        model = cls(**config)
        model.load_state_dict(converted, strict=True)
    return model.eval().requires_grad_(False)
