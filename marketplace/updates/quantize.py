"""Fixed-point encoding of updates: the integers that commitments, proofs and sums work on.

Values are round(x · 2^scale_bits). Storage is int32 whenever the task's bound fits in 31
bits (half the bytes on IPFS and in the proof's packing), int64 otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from marketplace.errors import UpdateFormatError

INT32_BOUND = 2**31 - 1
MAX_BOUND = 2**62  # keeps every check exact in int64 arithmetic
MAX_SCALE_BITS = 52  # a float64 mantissa holds the scaled value exactly up to here


def storage_dtype(bound: int) -> np.dtype:
    """int32 when every value in [-bound, bound] fits, else int64."""
    _check_bound(bound)
    return np.dtype(np.int32) if bound <= INT32_BOUND else np.dtype(np.int64)


def quantize(arrays: Mapping[str, np.ndarray], scale_bits: int, bound: int = INT32_BOUND) -> dict[str, np.ndarray]:
    """Round every value to a multiple of 2^-scale_bits and return the integer numerators.

    Refuses, naming the tensor, any NaN/inf and any value whose integer exceeds `bound` in
    magnitude: the sender must clip or pick a smaller scale, never wrap around silently.
    """
    check_scale_bits(scale_bits)
    dtype = storage_dtype(bound)
    factor = float(2**scale_bits)
    quantized: dict[str, np.ndarray] = {}
    for name, array in arrays.items():
        values = np.asarray(array)
        if values.dtype.kind not in "fiu":
            raise UpdateFormatError(f"tensor {name} has non-numeric dtype {values.dtype}")
        values = values.astype(np.float64)
        if not np.isfinite(values).all():
            raise UpdateFormatError(f"non-finite values in tensor {name}")
        scaled = np.rint(values * factor)
        largest = float(np.abs(scaled).max()) if scaled.size else 0.0
        if largest > bound:
            raise UpdateFormatError(
                f"tensor {name} has a value of magnitude {largest / factor:g}, beyond the fixed-point "
                f"bound {bound} at scale 2^{scale_bits} (|x| <= {bound / factor:g})",
                hint="clip the update or use fewer scale bits",
            )
        quantized[name] = scaled.astype(dtype)
    return quantized


def dequantize(quantized: Mapping[str, np.ndarray], scale_bits: int) -> dict[str, np.ndarray]:
    """Integers back to float32 values (x = q · 2^-scale_bits)."""
    check_scale_bits(scale_bits)
    factor = float(2**scale_bits)
    result: dict[str, np.ndarray] = {}
    for name, array in quantized.items():
        values = np.asarray(array)
        if values.dtype.kind not in "iu":
            raise UpdateFormatError(f"tensor {name} has dtype {values.dtype}; expected integer fixed point")
        result[name] = (values.astype(np.float64) / factor).astype(np.float32)
    return result


def check_scale_bits(scale_bits: int) -> None:
    if not isinstance(scale_bits, int) or isinstance(scale_bits, bool) or not 0 <= scale_bits <= MAX_SCALE_BITS:
        raise UpdateFormatError(f"scale_bits must be an integer in 0..{MAX_SCALE_BITS}, got {scale_bits!r}")


def _check_bound(bound: int) -> None:
    if not isinstance(bound, int) or isinstance(bound, bool) or not 1 <= bound <= MAX_BOUND:
        raise UpdateFormatError(f"fixed-point bound must be an integer in 1..2^62, got {bound!r}")
