"""Named tensors plus string metadata as safetensors bytes: no pickle, no code execution."""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping

import numpy as np
import safetensors.numpy

from marketplace.errors import UpdateFormatError

HEADER_LENGTH_BYTES = 8
MAX_HEADER_BYTES = 1 << 20  # names, shapes and a small metadata block never need more


def encode_tensors(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> bytes:
    """Serialise arrays (any safetensors-supported numpy dtype) and string metadata."""
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise UpdateFormatError(f"metadata must map strings to strings; got {key!r}: {value!r}")
    contiguous = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    try:
        return safetensors.numpy.save(contiguous, metadata=dict(metadata))
    except Exception as exc:  # the library raises several types for unsupported input
        raise UpdateFormatError(f"cannot encode tensors: {exc}") from exc


def decode_tensors(data: bytes, max_bytes: int) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse safetensors bytes into (arrays, metadata); anything malformed is an UpdateFormatError.

    The size limit is checked first, so an oversized upload costs no parsing.
    """
    if len(data) > max_bytes:
        raise UpdateFormatError(f"update is {len(data)} bytes; the limit for this task is {max_bytes}")
    metadata = _read_metadata(data)
    try:
        loaded = safetensors.numpy.load(bytes(data))
    except Exception as exc:  # SafetensorError, or numpy's refusal of an unsupported dtype
        raise UpdateFormatError(f"malformed safetensors data: {exc}") from exc
    return dict(loaded), metadata


def _read_metadata(data: bytes) -> dict[str, str]:
    """The `__metadata__` block of the JSON header (the numpy API does not return it)."""
    if len(data) < HEADER_LENGTH_BYTES:
        raise UpdateFormatError(f"malformed safetensors data: only {len(data)} bytes")
    (header_length,) = struct.unpack("<Q", data[:HEADER_LENGTH_BYTES])
    if header_length > MAX_HEADER_BYTES or header_length > len(data) - HEADER_LENGTH_BYTES:
        raise UpdateFormatError(f"malformed safetensors data: header length {header_length} is impossible")
    try:
        header = json.loads(data[HEADER_LENGTH_BYTES : HEADER_LENGTH_BYTES + header_length])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UpdateFormatError(f"malformed safetensors header: {exc}") from exc
    if not isinstance(header, dict):
        raise UpdateFormatError("malformed safetensors header: not a JSON object")
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise UpdateFormatError("malformed safetensors header: metadata must map strings to strings")
    return dict(metadata)
