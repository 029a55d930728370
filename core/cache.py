"""One in-memory model cache for the whole process (every app, and the hub serving them all).

Models are kept least-recently-used first out under a byte budget
(``GANHUB_MODEL_CACHE_MB``, default 6144 MB). Loading is serialised per model id, so two
requests for the same cold model load it once.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch


def module_bytes(model: Any) -> int:
    """Bytes held by a module's parameters and buffers (0 for non-modules)."""
    if not isinstance(model, torch.nn.Module):
        return int(getattr(model, "nbytes", 0))
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


class ModelCache:
    def __init__(self, budget_bytes: int | None = None):
        if budget_bytes is None:
            budget_bytes = int(float(os.environ.get("GANHUB_MODEL_CACHE_MB", "6144")) * 2**20)
        self.budget_bytes = budget_bytes
        self._items: OrderedDict[tuple, tuple[Any, int]] = OrderedDict()
        self._guard = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    def get_or_load(self, key: tuple, loader: Callable[[], Any], size: Callable[[Any], int] = module_bytes) -> Any:
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
            with self._guard:
                self._items[key] = (value, nbytes)
                self._evict(keep=key)
            return value

    def get(self, model_id: str, device=None, dtype=None) -> torch.nn.Module:
        """The model ``model_id`` from the manifest, loaded once (see ``core.weights.load_model``)."""
        from core.device import default_dtype, get_device
        from core.weights import _build_model

        device = torch.device(device) if device is not None else get_device()
        dtype = dtype or default_dtype(device)
        return self.get_or_load((model_id, str(device), str(dtype)), lambda: _build_model(model_id, device, dtype))

    def _evict(self, keep: tuple) -> None:
        total = sum(n for _, n in self._items.values())
        for key in list(self._items):
            if total <= self.budget_bytes:
                break
            if key == keep:
                continue
            total -= self._items.pop(key)[1]

    def keys(self) -> list[tuple]:
        with self._guard:
            return list(self._items)

    def total_bytes(self) -> int:
        with self._guard:
            return sum(n for _, n in self._items.values())

    def clear(self) -> None:
        with self._guard:
            self._items.clear()


MODEL_CACHE = ModelCache()
