"""Checkpoint formats -> plain ``{name: tensor}`` state dicts (run once, result cached as safetensors).

A source in the manifest names its ``format``; ``read_state_dict(path, fmt)`` applies it.
Pickled checkpoints are opened only with ``torch.load(weights_only=True)``, which refuses any
pickle that would import or call code outside tensors and plain containers, or, for files
that name other classes (PyTorch Lightning checkpoints, TorchScript archives), with
the restricted unpickler (:mod:`core.weights.unpickler`), which never imports or calls anything it was not built with.

Format fields (all optional except ``type``):
- ``type``: ``safetensors`` | ``torch_pickle`` | ``lightning_ckpt`` | ``torchscript_tensors`` |
  ``onnx_initializers`` (the stored weights of an ONNX file, :mod:`core.weights.onnx_tensors`; the graph
  is never run)
- ``key``: a dotted path into the loaded object (``"netG_state_dict"``, ``"g_ema"``, ``"state_dict"``)
- ``select_prefix``: keep only keys with this prefix, and strip it (``"generator."``)
- ``drop_keys``: exact keys to drop
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from core.weights.unpickler import check_archive_size, check_view, module_tensors, restricted_load


def _read_safetensors(path: Path, fmt: Mapping[str, Any]) -> Any:
    return load_file(str(path), device="cpu")


def _read_torch_pickle(path: Path, fmt: Mapping[str, Any]) -> Any:
    check_archive_size(path)
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for forbidden globals, RuntimeError for corrupt zips
        raise ValueError(f"{path.name} is not a loadable tensor-only torch checkpoint: {e}") from e


def _read_lightning_ckpt(path: Path, fmt: Mapping[str, Any]) -> Any:
    """A PyTorch Lightning checkpoint (``state_dict``, ``hyper_parameters``, callbacks...).

    Only tensors and plain containers come back as themselves; every other object (omegaconf
    configs, Lightning state) is an inert :class:`~core.weights.unpickler.OpaqueObject`. Select with
    ``key: state_dict``.
    """
    checkpoint = restricted_load(path)
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{path.name} is not a checkpoint dictionary (found {type(checkpoint).__name__}).")
    return checkpoint


def _read_torchscript_tensors(path: Path, fmt: Mapping[str, Any]) -> Any:
    """The parameters and buffers of a TorchScript archive, read from its data.pkl.

    The archive's code is never loaded or run (no ``torch.jit.load``): module objects are
    :class:`~core.weights.unpickler.OpaqueObject` s whose recorded state holds their tensors and submodules.
    """
    root = restricted_load(path)
    tensors = module_tensors(root)
    if not tensors:
        raise ValueError(f"{path.name} holds no module tensors (is it a TorchScript archive?).")
    return tensors


def _read_onnx_initializers(path: Path, fmt: Mapping[str, Any]) -> Any:
    from core.weights.onnx_tensors import read_initializers

    return read_initializers(path)


READERS: dict[str, Callable[[Path, Mapping[str, Any]], Any]] = {
    "safetensors": _read_safetensors,
    "torch_pickle": _read_torch_pickle,
    "lightning_ckpt": _read_lightning_ckpt,
    "torchscript_tensors": _read_torchscript_tensors,
    "onnx_initializers": _read_onnx_initializers,
}


def _select(obj: Any, key: str | None) -> Any:
    if not key:
        return obj
    for part in key.split("."):
        if not isinstance(obj, Mapping) or part not in obj:
            available = ", ".join(map(str, list(obj)[:10])) if isinstance(obj, Mapping) else type(obj).__name__
            raise ValueError(f"Checkpoint has no entry {part!r} (path {key!r}); it has: {available}.")
        obj = obj[part]
    return obj


def read_state_dict(path: str | Path, fmt: Mapping[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """Read a checkpoint file and return a flat ``{name: tensor}`` dict per ``fmt``."""
    fmt = dict(fmt or {"type": "safetensors"})
    kind = fmt.get("type", "safetensors")
    if kind not in READERS:
        raise ValueError(f"Unknown checkpoint format {kind!r}; known: {', '.join(sorted(READERS))}.")
    obj = _select(READERS[kind](Path(path), fmt), fmt.get("key"))
    if not isinstance(obj, Mapping):
        raise ValueError(f"Expected a state dict in {Path(path).name}, found {type(obj).__name__}.")
    prefix = fmt.get("select_prefix")
    if prefix:
        obj = {k[len(prefix):]: v for k, v in obj.items() if k.startswith(prefix)}
        if not obj:
            raise ValueError(f"No tensors with prefix {prefix!r} in {Path(path).name}.")
    drop = set(fmt.get("drop_keys", ()))
    state = {}
    for name, value in obj.items():
        if name in drop or name == "_metadata":
            continue
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"Entry {name!r} in {Path(path).name} is a {type(value).__name__}, not a tensor.")
        try:
            check_view(value.numel(), value.untyped_storage().nbytes() // max(1, value.element_size()),
                        value.shape, value.stride())
        except pickle.UnpicklingError as e:
            raise ValueError(f"Entry {name!r} in {Path(path).name}: {e}.") from None
        state[name] = value.contiguous()
    return state
