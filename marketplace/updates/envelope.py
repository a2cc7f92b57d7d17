"""The plaintext files of a round: a data owner's quantized update and the global model.

Both are safetensors; the update's header travels in the safetensors metadata. Unpacking is
the aggregator's first line of defence, so it checks everything a malicious sender could get
wrong and names the tensor and the problem in every refusal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from marketplace.errors import UpdateFormatError
from marketplace.updates.quantize import check_scale_bits
from marketplace.updates.tensors import decode_tensors, encode_tensors

UPDATE_FORMAT = "fedmarket-update"
MODEL_FORMAT = "fedmarket-model"
FORMAT_KEY = "format"
SUPPORTED_VERSIONS = (1,)
_HEADER_FIELDS = ("version", "task_id", "round", "num_samples", "scale_bits", "sender")
# Commitment openings, only in updates of tasks with proofs: they travel sealed, to the aggregator alone.
_OPTIONAL_FIELDS = ("blinding", "salt")
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,77}")  # up to uint256, no signs, no leading zeros
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class UpdateHeader:
    """Who sent an update, for which task and round, over how many samples, at which scale."""

    task_id: int
    round: int
    num_samples: int
    scale_bits: int
    sender: str
    version: int = 1
    blinding: int | None = None  # Pedersen blinding ρ of the update's commitment
    salt: int | None = None  # Poseidon salt of the update's commitment

    def __post_init__(self) -> None:
        for name in ("task_id", "round", "num_samples", "scale_bits", "version"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise UpdateFormatError(f"update header field {name} must be a non-negative integer, got {value!r}")
        if self.num_samples < 1:
            raise UpdateFormatError("update header field num_samples must be at least 1")
        if self.version not in SUPPORTED_VERSIONS:
            raise UpdateFormatError(
                f"update format version {self.version} is not supported (this client reads {SUPPORTED_VERSIONS})",
                hint="upgrade fedmarket",
            )
        check_scale_bits(self.scale_bits)
        for name in _OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise UpdateFormatError(f"update header field {name} must be a non-negative integer, got {value!r}")
        if not isinstance(self.sender, str) or not _ADDRESS.fullmatch(self.sender):
            raise UpdateFormatError(f"update header field sender must be a 0x address, got {self.sender!r}")

    def to_metadata(self) -> dict[str, str]:
        fields = {name: str(getattr(self, name)) for name in _HEADER_FIELDS}
        fields |= {name: str(getattr(self, name)) for name in _OPTIONAL_FIELDS if getattr(self, name) is not None}
        return {FORMAT_KEY: UPDATE_FORMAT, **fields}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> UpdateHeader:
        if metadata.get(FORMAT_KEY) != UPDATE_FORMAT:
            raise UpdateFormatError(
                f"not a fedmarket update (format {metadata.get(FORMAT_KEY)!r}, expected {UPDATE_FORMAT!r})"
            )
        unknown = sorted(set(metadata) - {FORMAT_KEY, *_HEADER_FIELDS, *_OPTIONAL_FIELDS})
        if unknown:
            raise UpdateFormatError(f"unknown update header field(s): {', '.join(unknown)}")
        missing = [name for name in _HEADER_FIELDS if name not in metadata]
        if missing:
            raise UpdateFormatError(f"update header is missing field(s): {', '.join(missing)}")
        numbers = {}
        for name in (*_HEADER_FIELDS, *_OPTIONAL_FIELDS):
            if name == "sender" or name not in metadata:
                continue
            text = metadata[name]
            if not _DECIMAL.fullmatch(text):
                raise UpdateFormatError(f"update header field {name} is not a decimal integer: {text[:40]!r}")
            numbers[name] = int(text)
        return cls(sender=metadata["sender"], **numbers)


def pack_update(header: UpdateHeader, qarrays: Mapping[str, np.ndarray]) -> bytes:
    """Serialise a quantized update (integer tensors) with its header."""
    for name, array in qarrays.items():
        if np.asarray(array).dtype.kind != "i":
            raise UpdateFormatError(
                f"tensor {name} has dtype {np.asarray(array).dtype}; updates carry signed integer fixed point",
                hint="quantize the update first",
            )
    return encode_tensors(qarrays, header.to_metadata())


def unpack_update(
    data: bytes,
    *,
    expected_shapes: Mapping[str, tuple[int, ...]],
    scale_bits: int,
    bound: int,
    max_bytes: int,
    expected_task_id: int | None = None,
    expected_round: int | None = None,
) -> tuple[UpdateHeader, dict[str, np.ndarray]]:
    """Parse and validate an update; returns its header and int64 tensors in canonical order.

    Tensors come back as int64 whatever their storage width, so sums over many data owners
    cannot overflow. `expected_task_id` / `expected_round`, when given, refuse an update
    replayed from another task or round.
    """
    arrays, metadata = decode_tensors(data, max_bytes)
    header = UpdateHeader.from_metadata(metadata)
    if header.scale_bits != scale_bits:
        raise UpdateFormatError(f"update uses scale_bits {header.scale_bits}; this task uses {scale_bits}")
    if expected_task_id is not None and header.task_id != expected_task_id:
        raise UpdateFormatError(f"update is for task {header.task_id}, not task {expected_task_id}")
    if expected_round is not None and header.round != expected_round:
        raise UpdateFormatError(f"update is for round {header.round}, not round {expected_round}")
    _check_names(arrays, expected_shapes)
    checked: dict[str, np.ndarray] = {}
    for name, shape in expected_shapes.items():
        array = arrays[name]
        _check_shape(name, array, shape)
        kind = array.dtype.kind
        if kind == "f":
            if not np.isfinite(array).all():
                raise UpdateFormatError(f"non-finite values in tensor {name}")
            raise UpdateFormatError(f"tensor {name} has dtype {array.dtype}; expected integer fixed point")
        if kind != "i":
            raise UpdateFormatError(f"tensor {name} has dtype {array.dtype}; expected signed integer fixed point")
        values = array.astype(np.int64)
        if values.size and (int(values.max()) > bound or int(values.min()) < -bound):
            worst = max(int(values.max()), -int(values.min()))
            raise UpdateFormatError(f"tensor {name} has a value of magnitude {worst}, beyond the bound {bound}")
        checked[name] = values
    return header, checked


def pack_model(arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str]) -> bytes:
    """Serialise a global model (float32 tensors, all finite) with string metadata."""
    if FORMAT_KEY in metadata:
        raise UpdateFormatError(f"metadata key {FORMAT_KEY!r} is reserved")
    for name, array in arrays.items():
        _check_float32(name, np.asarray(array))
    return encode_tensors(arrays, {FORMAT_KEY: MODEL_FORMAT, **metadata})


def unpack_model(
    data: bytes, expected_shapes: Mapping[str, tuple[int, ...]], max_bytes: int
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse and validate a global model file; returns (float32 tensors in canonical order, metadata)."""
    arrays, metadata = decode_tensors(data, max_bytes)
    if metadata.get(FORMAT_KEY) != MODEL_FORMAT:
        raise UpdateFormatError(
            f"not a fedmarket model (format {metadata.get(FORMAT_KEY)!r}, expected {MODEL_FORMAT!r})"
        )
    _check_names(arrays, expected_shapes)
    checked: dict[str, np.ndarray] = {}
    for name, shape in expected_shapes.items():
        _check_shape(name, arrays[name], shape)
        _check_float32(name, arrays[name])
        checked[name] = arrays[name]
    return checked, {key: value for key, value in metadata.items() if key != FORMAT_KEY}


def _check_names(arrays: Mapping[str, np.ndarray], expected_shapes: Mapping[str, tuple[int, ...]]) -> None:
    missing = [name for name in expected_shapes if name not in arrays]
    if missing:
        raise UpdateFormatError(f"missing tensor(s): {', '.join(missing)}")
    extra = sorted(set(arrays) - set(expected_shapes))
    if extra:
        raise UpdateFormatError(f"unexpected tensor(s): {', '.join(extra)}")


def _check_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if tuple(array.shape) != tuple(shape):
        raise UpdateFormatError(f"tensor {name} has shape {tuple(array.shape)}; expected {tuple(shape)}")


def _check_float32(name: str, array: np.ndarray) -> None:
    if array.dtype != np.float32:
        raise UpdateFormatError(f"tensor {name} has dtype {array.dtype}; model tensors are float32")
    if not np.isfinite(array).all():
        raise UpdateFormatError(f"non-finite values in tensor {name}")
