"""The restricted unpickler: reads the pickle inside a torch zip archive without importing or
running anything from it.

A torch zip archive (``torch.save`` since PyTorch 1.6, and ``torch.jit.save``) holds
``<root>/data.pkl`` (the pickled object) and ``<root>/data/<key>`` (raw little-endian tensor
storages, referenced from the pickle through persistent ids). The pickle is read by
:class:`RestrictedUnpickler`: tensor rebuilds run our own code on the storages, a handful of
plain containers are allowed, and EVERY other global (omegaconf containers, Lightning
callbacks, TorchScript module classes, ``os.system``...) becomes an :class:`OpaqueObject`
subclass that only records the arguments and state it is given. Nothing from the file is
ever imported or called.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def check_archive_size(path: Path) -> None:
    """Refuse a zip archive whose members would inflate past ``core.limits.max_checkpoint_bytes``
    (deflate-compressed members can declare gigabytes in a few KB)."""
    from core.limits import max_checkpoint_bytes

    if not zipfile.is_zipfile(path):
        return
    with zipfile.ZipFile(path) as archive:
        total = sum(info.file_size for info in archive.infolist())
    if total > max_checkpoint_bytes():
        raise ValueError(f"{path.name} inflates to {total / 2**20:,.0f} MB; the converter's limit is "
                         f"{max_checkpoint_bytes() / 2**20:,.0f} MB (GANHUB_MAX_CHECKPOINT_MB).")


_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexFloatStorage": torch.complex64, "ComplexDoubleStorage": torch.complex128,
}


class OpaqueObject:
    """Inert stand-in for a class or function that a pickle names but is not allowlisted.

    Creating, calling or restoring it only stores what it was given (``args``, ``kwargs``,
    ``state``); ``global_name`` says what the pickle asked for.
    """

    global_name = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state = args, kwargs, None
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def __repr__(self) -> str:
        return f"<opaque {self.global_name}>"


class _StorageRef:
    """A typed storage read from ``data/<key>`` (a flat tensor)."""

    def __init__(self, flat: torch.Tensor):
        self.flat = flat


def _check_ints(name: str, values: Any) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list)) or not all(type(v) is int for v in values):
        raise pickle.UnpicklingError(f"{name} must be a tuple of ints, got {values!r}")
    return tuple(values)


def check_view(numel: int, storage_numel: int, size, stride) -> None:
    """A view with more elements than its storage (stride 0, overlapping strides) would be expanded
    by the copy that follows: a one-element storage can declare terabytes."""
    if numel > storage_numel:
        raise pickle.UnpicklingError(
            f"a tensor of shape {tuple(size)} (stride {tuple(stride)}) declares {numel:,} elements on a storage of "
            f"{storage_numel:,}; stride-0 and overlapping views are refused")


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> torch.Tensor:
    """``torch._utils._rebuild_tensor(_v2)`` on our own storages (requires_grad, hooks, metadata ignored)."""
    if not isinstance(storage, _StorageRef) or type(storage_offset) is not int:
        raise pickle.UnpicklingError("malformed tensor record")
    size, stride = _check_ints("size", size), _check_ints("stride", stride)
    if len(size) != len(stride) or storage_offset < 0 or any(s < 0 for s in size + stride):
        raise pickle.UnpicklingError(f"malformed tensor record: size {size}, stride {stride}")
    check_view(math.prod(size), storage.flat.numel(), size, stride)
    try:  # as_strided checks the view against the storage's bounds
        return storage.flat.as_strided(size, stride, storage_offset).clone()
    except RuntimeError as e:
        raise pickle.UnpicklingError(f"tensor record does not fit its storage: {e}") from e


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *_ignored) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise pickle.UnpicklingError("malformed parameter record")
    return data


def _no_build(self, state):
    raise pickle.UnpicklingError(f"the pickle tries to change the allowlisted {self!r} (BUILD)")


class _StorageType:
    """The dtype a ``torch.*Storage`` global names. Shared by every load in the process, so the
    pickle's BUILD opcode (``__setstate__``) may not change it."""

    __slots__ = ("dtype",)
    __setstate__ = _no_build

    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype

    def __repr__(self) -> str:
        return f"<storage type {self.dtype}>"


class _Allowed:
    """An allowlisted callable as the pickle sees it: callable, but with no attributes to set
    (BUILD on a shared function could otherwise rewrite its ``__defaults__`` for later loads)."""

    __slots__ = ("_target",)
    __setstate__ = _no_build

    def __init__(self, target: Callable):
        self._target = target

    def __call__(self, *args, **kwargs):
        return self._target(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<allowlisted {getattr(self._target, '__name__', self._target)}>"


_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor"): _Allowed(_rebuild_tensor),
    ("torch._utils", "_rebuild_tensor_v2"): _Allowed(_rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _Allowed(_rebuild_parameter),
    ("torch._utils", "_rebuild_parameter_with_state"): _Allowed(_rebuild_parameter),
    ("collections", "OrderedDict"): _Allowed(collections.OrderedDict),
    ("torch", "Size"): _Allowed(torch.Size),
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_DTYPES.items()},
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles data.pkl of a torch zip archive without importing or running anything from it."""

    def __init__(self, file, archive: zipfile.ZipFile, root: str):
        super().__init__(file)
        self._archive, self._root = archive, root
        self._storages: dict[str, _StorageRef] = {}
        self._opaque: dict[tuple[str, str], type[OpaqueObject]] = {}

    def find_class(self, module: str, name: str) -> Any:
        key = (str(module), str(name))
        if key in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[key]
        if key not in self._opaque:
            self._opaque[key] = type("Opaque", (OpaqueObject,), {"global_name": f"{key[0]}.{key[1]}"})
        return self._opaque[key]

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str) and type(pid[4]) is int):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.200}")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if key not in self._storages:
            member = f"{self._root}data/{key}"
            try:
                info = self._archive.getinfo(member)
            except KeyError as e:
                raise pickle.UnpicklingError(f"the archive has no storage {member}") from e
            needed = numel * torch.empty((), dtype=storage_type.dtype).element_size()
            if info.file_size < needed:
                raise pickle.UnpicklingError(f"storage {member} is truncated")
            with self._archive.open(info) as f:  # inflates only the bytes the tensor needs
                raw = bytearray(f.read(needed))
            if len(raw) < needed:
                raise pickle.UnpicklingError(f"storage {member} is truncated")
            flat = torch.frombuffer(raw, dtype=storage_type.dtype, count=numel) if numel else torch.empty(
                0, dtype=storage_type.dtype)
            self._storages[key] = _StorageRef(flat)
        return self._storages[key]


def restricted_load(path: str | Path, pickle_name: str = "data.pkl") -> Any:
    """Unpickle ``<root>/<pickle_name>`` of a torch zip archive with :class:`RestrictedUnpickler`."""
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path.name} is not a torch zip archive (the legacy pre-1.6 torch.save format is not supported; "
            "re-save it with a recent PyTorch).")
    check_archive_size(path)
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/" + pickle_name)]
        if len(names) != 1:
            raise ValueError(f"{path.name} has {len(names)} top-level {pickle_name} entries; expected one.")
        root = names[0][: -len(pickle_name)]
        byteorder = f"{root}byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise ValueError(f"{path.name} stores big-endian tensors; only little-endian files are supported.")
        try:
            with archive.open(names[0]) as f:
                return RestrictedUnpickler(io.BufferedReader(f), archive, root).load()
        except Exception as e:  # malformed or hostile pickles end here, never run
            raise ValueError(f"{path.name}: the pickle could not be read safely ({type(e).__name__}: {e}).") from e


def module_tensors(module: Any) -> dict[str, torch.Tensor]:
    """Dotted names -> tensors of an unpickled TorchScript module tree (parameters and buffers)."""
    found: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    stack = [("", module)]
    while stack:
        prefix, obj = stack.pop()
        if id(obj) in seen or not isinstance(obj, OpaqueObject) or not isinstance(obj.state, dict):
            continue
        seen.add(id(obj))
        for name, value in obj.state.items():
            if isinstance(value, torch.Tensor):
                found[f"{prefix}{name}"] = value
            elif isinstance(value, OpaqueObject):
                stack.append((f"{prefix}{name}.", value))
    return dict(sorted(found.items()))
