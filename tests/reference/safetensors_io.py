"""A small safetensors reader and writer on numpy, for the Marian oracle and its model generator.

Format: an 8-byte little-endian header length, a JSON header
{name: {"dtype", "shape", "data_offsets": [begin, end]}} (plus an optional "__metadata__"), then
the raw little-endian data; offsets are relative to the end of the header.
"""

import json
import struct

import numpy as np

_NUMPY_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
}


def float32_to_bfloat16_bits(values):
    """Rounds float32 values to bfloat16 (to nearest, ties to even) and returns the uint16 bits."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounding = ((bits >> 16) & 1) + 0x7FFF
    return ((bits + rounding) >> 16).astype(np.uint16)


def bfloat16_bits_to_float32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def encode_tensor(values, dtype):
    """float32 values -> (raw bytes in `dtype`, the float32 values those bytes hold)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    if dtype == "F32":
        return values.tobytes(), values
    if dtype == "F16":
        half = values.astype(np.float16)
        return half.tobytes(), half.astype(np.float32)
    if dtype == "BF16":
        bits = float32_to_bfloat16_bits(values)
        return bits.tobytes(), bfloat16_bits_to_float32(bits).reshape(values.shape)
    raise ValueError(f"unsupported dtype {dtype}")


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype string, shape, raw bytes), written in that order."""
    header = {}
    offset = 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # Like the reference writer: data 8-byte aligned.
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, raw in tensors:
            f.write(raw)


def read_safetensors(path):
    """Returns {name: float32 numpy array} for the float tensors and {name: array} for the rest."""
    with open(path, "rb") as f:
        data = f.read()
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_size].decode("utf-8"))
    base = 8 + header_size
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        raw = data[base + begin:base + end]
        shape = tuple(entry["shape"])
        if entry["dtype"] == "BF16":
            array = bfloat16_bits_to_float32(np.frombuffer(raw, dtype="<u2")).reshape(shape)
        else:
            array = np.frombuffer(raw, dtype=_NUMPY_DTYPES[entry["dtype"]]).reshape(shape)
            if array.dtype.kind == "f":
                array = array.astype(np.float32)
        tensors[name] = array
    return tensors
