"""One in-memory cache for the whole process (every app, and the hub serving them all): a
thread-safe LRU of loaded values (models, pipelines, fits) under byte budgets. What a value is and
how it is built is the caller's business (``core.weights.load_model`` builds models); the cache
only sizes values (:func:`module_bytes`) and sees which device's memory they occupy.

Values are kept least-recently-used first out under a byte budget per kind of memory: RAM
(``GANHUB_MODEL_CACHE_MB``, default 6144 MB) for models on the CPU, and a separate budget for
each accelerator (``GANHUB_MODEL_CACHE_VRAM_MB``; by default half of the CUDA device's memory,
and the RAM default on other accelerators, e.g. MPS). Loading a model onto the GPU evicts only
GPU models, and a CPU model never pushes one out of VRAM. Loading is serialised per key, so two
requests for the same cold model load it once.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch

DEFAULT_RAM_MB = 6144
DEFAULT_CUDA_FRACTION = 0.5


def module_bytes(model: Any) -> int:
    """Bytes held by a module's parameters and buffers (0 for non-modules)."""
    if not isinstance(model, torch.nn.Module):
        return int(getattr(model, "nbytes", 0))
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


def device_kind(value: Any) -> str:
    """The device type whose memory ``value`` occupies, from its first tensor: a module's parameters
    or buffers, a tensor, a tuple/list of tensors, or an object with a ``device`` (a diffusers
    pipeline). ``"cpu"`` when it holds no tensor."""
    if isinstance(value, torch.Tensor):
        return value.device.type
    if isinstance(value, torch.nn.Module):
        first = next(itertools.chain(value.parameters(), value.buffers()), None)
        return first.device.type if first is not None else "cpu"
    if isinstance(value, (tuple, list)):
        return next((v.device.type for v in value if isinstance(v, torch.Tensor)), "cpu")
    device = getattr(value, "device", None)
    return device.type if isinstance(device, torch.device) else "cpu"


def _env_bytes(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(float(value) * 2**20) if value else None


def default_budget(kind: str) -> int:
    """Bytes the cache may hold on devices of type ``kind`` (read from the environment when asked)."""
    ram = _env_bytes("GANHUB_MODEL_CACHE_MB") or DEFAULT_RAM_MB * 2**20
    if kind == "cpu":
        return ram
    vram = _env_bytes("GANHUB_MODEL_CACHE_VRAM_MB")
    if vram is not None:
        return vram
    if kind == "cuda" and torch.cuda.is_available():
        try:
            total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
            return int(total * DEFAULT_CUDA_FRACTION)
        except (RuntimeError, AssertionError):  # e.g. ZeroGPU outside a GPU window: no device to ask
            pass
    return ram


class ModelCache:
    """``budget_bytes``: the RAM budget; ``vram_budget_bytes``: the budget of each accelerator
    kind (cuda, mps, ...), counted separately from RAM and from each other. ``None`` reads
    :func:`default_budget`."""

    def __init__(self, budget_bytes: int | None = None, vram_budget_bytes: int | None = None):
        self.budget_bytes = budget_bytes if budget_bytes is not None else default_budget("cpu")
        self.vram_budget_bytes = vram_budget_bytes
        self._items: OrderedDict[tuple, tuple[Any, int, str]] = OrderedDict()
        self._guard = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    def budget_for(self, kind: str) -> int:
        if kind == "cpu":
            return self.budget_bytes
        return self.vram_budget_bytes if self.vram_budget_bytes is not None else default_budget(kind)

    def get_or_load(self, key: tuple, loader: Callable[[], Any], size: Callable[[Any], int] = module_bytes,
                    device: str | torch.device | None = None) -> Any:
        """The cached value of ``key``, or ``loader()``'s, counted against the budget of ``device``
        (a device or device type; by default the one the value's tensors are on, :func:`device_kind`)."""
        with self._guard:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
            lock = self._loading.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key][0]
            value = loader()
            nbytes = size(value)
            kind = torch.device(device).type if device is not None else device_kind(value)
            budget = self.budget_for(kind)
            with self._guard:
                self._items[key] = (value, nbytes, kind)
                self._evict(keep=key, kind=kind, budget=budget)
            return value

    def _evict(self, keep: tuple, kind: str, budget: int) -> None:
        """Drop the least recently used values on ``kind`` until its total fits ``budget``."""
        total = sum(n for _, n, k in self._items.values() if k == kind)
        for key in list(self._items):
            if total <= budget:
                break
            if key == keep or self._items[key][2] != kind:
                continue
            total -= self._items.pop(key)[1]

    def keys(self) -> list[tuple]:
        with self._guard:
            return list(self._items)

    def total_bytes(self, kind: str | None = None) -> int:
        """Bytes held on devices of type ``kind`` (every device when ``None``)."""
        with self._guard:
            return sum(n for _, n, k in self._items.values() if kind is None or k == kind)

    def clear(self) -> None:
        with self._guard:
            self._items.clear()


MODEL_CACHE = ModelCache()
