"""Building models from their weights: the one place that does, and the one that caches them.

:func:`load_model` resolves a model's safetensors file, strictly loads it into its architecture
(``core.models``), puts it on the device in the manifest's dtype for that device, and keeps it in
the process-wide cache (``core.cache.MODEL_CACHE``) so every app shares one copy.
"""

from __future__ import annotations

from core.weights.manifest import get_entry
from core.weights.resolver import resolve
from core.weights.safetensors_io import read_safetensors


def load_state_dict(model_id: str, download: bool = True):
    return read_safetensors(resolve(model_id, download))


def autocast_for(model_id: str, device):
    """The reduced-precision context ``model_id`` runs under on ``device`` (its manifest's
    ``cpu_autocast``; see :func:`core.device.autocast`)."""
    from core.device import autocast

    return autocast(device, get_entry(model_id).cpu_autocast)


def dtype_for(model_id: str, device):
    """The dtype ``model_id``'s weights take on ``device`` (its manifest's ``cuda_dtype`` on CUDA;
    see :func:`core.device.default_dtype`)."""
    from core.device import default_dtype

    return default_dtype(device, get_entry(model_id).cuda_dtype)


def load_model(model_id: str, device=None, dtype=None):
    """Resolve, strictly load and return ``model_id`` in eval mode on ``device``, built once per
    (model, device, dtype) and shared through ``MODEL_CACHE``."""
    import torch

    from core.cache import MODEL_CACHE  # imports torch: kept out of the light imports of core.weights
    from core.device import get_device

    device = torch.device(device) if device is not None else get_device()
    dtype = dtype or dtype_for(model_id, device)
    return MODEL_CACHE.get_or_load((model_id, str(device), str(dtype)), lambda: build_model(model_id, device, dtype),
                                   device=device)


def build_model(model_id: str, device=None, dtype=None):
    """A new instance of ``model_id`` with its weights strictly loaded (not cached: see :func:`load_model`)."""
    import torch

    import core.models as registry
    from core.device import get_device

    entry = get_entry(model_id)
    device = device or get_device()
    # The tensors are fresh and owned (read_safetensors), so the module takes them without a copy.
    model = registry.load(entry.arch, load_state_dict(model_id), copy=False, **entry.config)
    dtype = dtype or dtype_for(model_id, device)
    first = next(model.parameters(), None)  # all tensors were read to the CPU in the module's dtype
    if first is not None and (first.device != torch.device(device) or first.dtype != dtype):
        model = model.to(device=device, dtype=dtype)
    if torch.device(device).type == "cpu" and entry.cpu_channels_last:
        # NHWC weights make oneDNN run these generators 5-10% faster on CPU (bench/RESULTS.md);
        # inputs stay NCHW, the outputs come back channels_last with the same values.
        model = model.to(memory_format=torch.channels_last)
    return model
