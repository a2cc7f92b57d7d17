"""Signed fixed-point integers ↔ elements of F_r, without ambiguity.

A quantized update holds signed integers v with |v| ≤ bound (marketplace.updates.quantize).
Commitments and proofs work in F_r, so v is encoded as v mod r: v ≥ 0 stays v, v < 0
becomes r − |v|. Decoding needs the declared bound: e ≤ bound decodes to e, e ≥ r − bound
to e − r, and anything in between is refused, because it is the image of no admissible
value (a wrapped-around sum, or a forged opening). The map is injective exactly when
2·bound < r, which `check_bound` enforces; aggregates use `aggregate_bound` so that the
weighted sum Σ w_i·u_i of admissible updates is itself decodable.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from zk.curve import CURVE_ORDER

#: Largest bound for which v ↦ v mod r is injective on [−bound, bound].
MAX_BOUND = (CURVE_ORDER - 1) // 2


class FieldRangeError(ValueError):
    """A value or field element lies outside the declared signed range."""


def check_bound(bound: int) -> int:
    """Validate a signed range [−bound, bound] that maps into F_r injectively."""
    bound = int(bound)
    if not 0 <= bound <= MAX_BOUND:
        raise FieldRangeError(f"bound {bound} must lie in [0, (r-1)/2] for an unambiguous encoding")
    return bound


def encode(value: int, bound: int = MAX_BOUND) -> int:
    """v ↦ v mod r for |v| ≤ bound (negative v ↦ r − |v|)."""
    value, bound = int(value), check_bound(bound)
    if abs(value) > bound:
        raise FieldRangeError(f"value {value} exceeds the declared bound {bound}")
    return value % CURVE_ORDER


def decode(element: int, bound: int = MAX_BOUND) -> int:
    """Inverse of `encode`: refuses elements that are not the image of some |v| ≤ bound."""
    element, bound = int(element), check_bound(bound)
    if not 0 <= element < CURVE_ORDER:
        raise FieldRangeError(f"{element} is not a canonical element of F_r")
    if element <= bound:
        return element
    if element >= CURVE_ORDER - bound:
        return element - CURVE_ORDER
    raise FieldRangeError(f"field element {element} decodes to no value within ±{bound}")


def encode_vector(values: np.ndarray | Sequence[int], bound: int = MAX_BOUND) -> list[int]:
    """`encode` element-wise, checking the whole vector against the bound first."""
    array = as_integer_vector(values)
    check_vector_bound(array, bound)
    return [int(v) % CURVE_ORDER for v in array.tolist()]


def decode_vector(elements: Iterable[int], bound: int = MAX_BOUND) -> np.ndarray:
    """`decode` element-wise; int64 when every value fits, else an object array of Python ints."""
    values = [decode(e, bound) for e in elements]
    return as_integer_vector(values)


def as_integer_vector(values: np.ndarray | Sequence[int]) -> np.ndarray:
    """A 1-D integer array: int64 if it fits, else dtype=object holding exact Python ints.

    Floats are refused: fixed-point rounding is the quantizer's job, never silently ours.
    """
    array = np.asarray(values)
    if array.dtype == object:
        raw = array.reshape(-1).tolist()
        if any(isinstance(v, bool) or not isinstance(v, int | np.integer) for v in raw):
            raise TypeError("commitment values must be integers")
        items = [int(v) for v in raw]
        if all(-(2**63) <= v < 2**63 for v in items):
            return np.asarray(items, dtype=np.int64)
        return np.asarray(items, dtype=object)
    if array.dtype.kind == "b" or array.dtype.kind not in "iu":
        raise TypeError(f"commitment values must be integers, got dtype {array.dtype}")
    if array.dtype == np.uint64 and array.size and int(array.max()) >= 2**63:
        return np.asarray([int(v) for v in array.reshape(-1).tolist()], dtype=object)
    return array.reshape(-1).astype(np.int64, copy=False)


def check_vector_bound(values: np.ndarray, bound: int) -> None:
    """Raise FieldRangeError naming the first coordinate with |v| > bound."""
    bound = check_bound(bound)
    if values.size == 0:
        return
    if values.dtype == object:
        bad = [i for i, v in enumerate(values.tolist()) if abs(int(v)) > bound]
    else:
        magnitude = np.abs(values.astype(np.int64))
        # |int64 min| overflows to itself (negative): treat it as out of any bound < 2^63.
        over = (magnitude > bound) | (magnitude < 0) if bound < 2**63 else magnitude < 0
        bad = np.flatnonzero(over).tolist()
    if bad:
        raise FieldRangeError(f"coordinate {bad[0]} has |value| {abs(int(values[bad[0]]))} > bound {bound}")


def aggregate_bound(update_bound: int, weights: Sequence[int]) -> int:
    """The bound of Σ w_i·u_i when every |u_ij| ≤ update_bound: update_bound · Σ |w_i|."""
    bound = int(update_bound) * sum(abs(int(w)) for w in weights)
    return check_bound(bound)
