"""Reading a safetensors file into tensors this process owns."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from core.weights.paths import display_path

if TYPE_CHECKING:
    import torch

SAFETENSORS_DTYPES = ("F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL")


def _torch_dtypes() -> dict:
    import torch

    return dict(zip(SAFETENSORS_DTYPES, (torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64,
                                         torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool)))


def _read_whole(path: Path):
    import torch

    size = path.stat().st_size
    buffer = torch.empty(size, dtype=torch.uint8)
    with open(path, "rb", buffering=0) as f:
        view = memoryview(buffer.numpy()).cast("B")
        done = 0
        while done < size:
            n = f.readinto(view[done:])
            if not n:
                raise ValueError(f"{display_path(path)} is truncated ({done} of {size} bytes)")
            done += n
    return buffer


def read_safetensors(path: str | Path) -> dict[str, "torch.Tensor"]:
    """Tensors of a safetensors file in memory this process owns, with one read of the file.

    ``safetensors.torch.load_file`` maps the file and each tensor is then copied page by page;
    here the whole file is read once into one buffer and every tensor is a view of it, so the
    model never depends on the file staying unchanged on disk.
    """
    path = Path(path)
    buffer = _read_whole(path)
    size = len(buffer)
    if size < 8:
        raise ValueError(f"{display_path(path)} is not a safetensors file (too short)")
    header_len = int.from_bytes(bytes(buffer[:8].numpy()), "little")
    if header_len > size - 8:
        raise ValueError(f"{display_path(path)} is not a safetensors file (bad header length)")
    header = json.loads(bytes(buffer[8 : 8 + header_len].numpy()))
    header.pop("__metadata__", None)
    start = 8 + header_len
    dtypes = _torch_dtypes()
    state = {}
    for name, info in header.items():
        dtype = dtypes.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{display_path(path)}: tensor {name} has unsupported dtype {info['dtype']}")
        begin, end = (start + o for o in info["data_offsets"])
        if not start <= begin <= end <= size:
            raise ValueError(f"{display_path(path)}: tensor {name} lies outside the file")
        if math.prod(info["shape"]) * dtype.itemsize != end - begin:
            raise ValueError(f"{display_path(path)}: tensor {name} has {end - begin} bytes for shape {info['shape']}")
        raw = buffer[begin:end]
        if begin % dtype.itemsize:  # unaligned for its dtype: copy this one tensor instead of viewing it
            raw = raw.clone()
        state[name] = raw.view(dtype).reshape(info["shape"])
    return state
