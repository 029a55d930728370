"""Write minimal ONNX files (protocol buffers by hand) so the initializer reader can be tested
without the ``onnx`` package: a ``ModelProto`` whose graph has a node and initializers."""

from __future__ import annotations

import numpy as np

_TYPES = {np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int64): 7, np.dtype(np.float16): 10,
          np.dtype(np.float64): 11}


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, payload: bytes | int) -> bytes:
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def tensor_proto(name: str, array: np.ndarray, typed_field: bool = False) -> bytes:
    """A TensorProto: values in ``raw_data``, or (``typed_field``) float32 in packed ``float_data``."""
    array = np.asarray(array).copy(order="C")  # (ascontiguousarray would make a scalar 1-d)
    dims = b"".join(varint(d) for d in array.shape)
    body = field(1, dims) + field(2, _TYPES[array.dtype]) + field(8, name.encode())
    if typed_field:
        body += field(4, array.astype("<f4").tobytes())
    else:
        body += field(9, array.astype(array.dtype.newbyteorder("<")).tobytes())
    return body


def onnx_model(initializers: dict[str, np.ndarray], typed: tuple[str, ...] = ()) -> bytes:
    node = field(1, b"x") + field(2, b"y") + field(4, b"Relu")  # NodeProto: input, output, op_type
    graph = field(1, node) + field(2, b"graph")
    for name, array in initializers.items():
        graph += field(5, tensor_proto(name, array, name in typed))
    return field(1, 8) + field(2, b"test") + field(7, graph)  # ir_version, producer_name, graph
