"""Model weights: the manifest, where each model's files come from, and loading them.

``weights_manifest.json`` is the single record of every model (see :mod:`.manifest`). The modules:

- :mod:`.manifest`: the schema (``ModelEntry``, ``Source``), ``models_for_app``, ``face_layout``,
  the offline set, download sizes; :mod:`.validation` checks the schema.
- :mod:`.sources`: the ``hf`` / ``url`` / ``pypi`` / ``local`` fetchers, over :mod:`.network`
  (capped, same-host downloads and the PyPI index reader).
- :mod:`.store`: the converted safetensors files and their sidecars and locks; :mod:`.resolver`:
  ``resolve`` (override, store, sources in order) and ``availability``.
- :mod:`.convert`, :mod:`.unpickler`, :mod:`.onnx_tensors`: checkpoint formats to state dicts,
  without running anything from the files.
- :mod:`.safetensors_io`: reading a converted file; :mod:`.loading`: ``load_model``, the one place
  that builds models from weights (cached in ``core.cache.MODEL_CACHE``).
- :mod:`.snapshots`: whole Hub snapshots for diffusers and transformers models.
- ``python -m core.weights``: the command line (:mod:`.__main__`).
"""

from core.weights.errors import ChecksumError, WeightsUnavailableError
from core.weights.hashing import sha256_of
from core.weights.loading import autocast_for, build_model, dtype_for, load_model, load_state_dict
from core.weights.manifest import (
    SNAPSHOT_ARCHS,
    ModelEntry,
    Source,
    about_size,
    download_bytes,
    face_layout,
    get_entry,
    load_manifest,
    model_for_role,
    models_for_app,
    models_for_role,
    offline_models,
)
from core.weights.paths import MANIFEST_PATH, REPO_ROOT, cache_dir, display_path, manifest_path, override_path
from core.weights.resolver import availability, fetch, how_to_provide, resolve, weights_present
from core.weights.safetensors_io import read_safetensors
from core.weights.snapshots import resolve_snapshot
from core.weights.validation import validate_manifest

__all__ = [
    "MANIFEST_PATH", "REPO_ROOT", "SNAPSHOT_ARCHS", "ChecksumError", "ModelEntry", "Source", "WeightsUnavailableError",
    "about_size", "autocast_for", "availability", "build_model", "cache_dir", "display_path", "download_bytes",
    "dtype_for", "face_layout", "fetch", "get_entry", "how_to_provide", "load_manifest", "load_model",
    "load_state_dict", "manifest_path", "model_for_role", "models_for_app", "models_for_role", "offline_models", "override_path", "read_safetensors",
    "resolve", "resolve_snapshot", "sha256_of", "validate_manifest", "weights_present",
]
