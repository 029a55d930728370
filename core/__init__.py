"""GAN Demo Hub core: weights, architectures, image I/O and inference procedures shared by every app.

Public entry points (imported lazily so ``python -m core.weights`` and light imports stay cheap):
``load_model``, ``resolve``, ``get_entry``, ``load_manifest``, ``availability``, ``WeightsUnavailableError``.
"""

import importlib

__version__ = "1.0.0"  # the hub's release, reported by GET /health

__all__ = ["WeightsUnavailableError", "availability", "get_entry", "load_manifest", "load_model", "resolve"]


def __getattr__(name):
    if name in __all__:
        return getattr(importlib.import_module("core.weights"), name)
    raise AttributeError(f"module 'core' has no attribute {name!r}")
