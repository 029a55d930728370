"""The initializers (stored weights) of an ONNX file, read as tensors without the ``onnx`` package.

An ONNX file is a protocol-buffers ``ModelProto``; its ``graph`` (field 7) lists the weights as
``initializer`` ``TensorProto`` s (field 5): ``dims`` (1), ``data_type`` (2), ``name`` (8) and the
values in ``raw_data`` (9, little-endian) or a typed field (``float_data`` 4, ``int32_data`` 5,
``int64_data`` 7, ``double_data`` 10). Only those fields are decoded; the graph's nodes are
skipped unread and never executed. Weights stored outside the file (``data_location`` EXTERNAL)
are refused: a converted source must be one self-contained file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

# ONNX TensorProto.DataType -> numpy dtype of the stored values
_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
           10: np.float16, 11: np.float64}
_BFLOAT16 = 16


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated protocol-buffers varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("malformed protocol-buffers varint")


def fields(data: memoryview):
    """(field number, wire type, value) of one message: ints for varints, memoryviews otherwise."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported protocol-buffers wire type {wire}")
        if pos > len(data):
            raise ValueError("truncated protocol-buffers message")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed_varints(values: list) -> list[int]:
    out = []
    for wire, value in values:
        if wire == 0:
            out.append(_signed(value))
            continue
        pos = 0
        while pos < len(value):
            number, pos = _varint(value, pos)
            out.append(_signed(number))
    return out


def _tensor(message: memoryview) -> tuple[str, torch.Tensor]:
    dims, typed, name, dtype, raw, external = [], {}, "", 0, None, False
    for number, wire, value in fields(message):
        if number == 1:
            dims.append((wire, value))
        elif number == 2:
            dtype = value
        elif number == 8:
            name = bytes(value).decode("utf-8")
        elif number == 9:
            raw = value
        elif number == 14:
            external = value == 1
        elif number in (4, 5, 7, 10):
            typed.setdefault(number, []).append((wire, value))
    shape = _packed_varints(dims)
    if external:
        raise ValueError(f"initializer {name!r} is stored in an external file; only self-contained ONNX files are read")
    if dtype == _BFLOAT16:
        bits = np.frombuffer(raw, "<u2") if raw is not None else np.array(_packed_varints(typed.get(5, [])), np.uint16)
        array = (bits.astype(np.uint32) << 16).view(np.float32)
        return name, torch.from_numpy(array.copy()).reshape(shape).to(torch.bfloat16)
    if dtype not in _DTYPES:
        raise ValueError(f"initializer {name!r} has an unsupported ONNX data type {dtype}")
    np_dtype = np.dtype(_DTYPES[dtype]).newbyteorder("<")
    if raw is not None:
        array = np.frombuffer(raw, np_dtype)
    elif dtype in (1, 11):  # float_data / double_data: packed (or single) fixed-size values
        array = np.frombuffer(b"".join(bytes(v) for _, v in typed.get(4 if dtype == 1 else 10, [])), np_dtype)
    else:  # int32_data holds int8/uint8/int16/int32/bool/float16 (as bits); int64_data int64
        values = _packed_varints(typed.get(7 if dtype == 7 else 5, []))
        array = np.array(values, np.uint16).view(np.float16) if dtype == 10 else np.array(values).astype(np_dtype)
    if array.size != int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"initializer {name!r} has {array.size} values for shape {shape}")
    return name, torch.from_numpy(array.astype(np_dtype.newbyteorder("="), copy=True)).reshape(shape)


def read_initializers(path: str | Path) -> dict[str, torch.Tensor]:
    """``{name: tensor}`` of every initializer of the ONNX model at ``path``."""
    data = memoryview(Path(path).read_bytes())
    graphs = [value for number, wire, value in fields(data) if number == 7 and wire == 2]
    if not graphs:
        raise ValueError(f"{Path(path).name} is not an ONNX model (no graph)")
    tensors = {}
    for number, wire, value in fields(graphs[0]):
        if number == 5 and wire == 2:
            name, tensor = _tensor(value)
            if name in tensors:
                raise ValueError(f"{Path(path).name} has two initializers named {name!r}")
            tensors[name] = tensor
    if not tensors:
        raise ValueError(f"{Path(path).name} holds no initializers")
    return tensors
