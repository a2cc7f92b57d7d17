"""Signed integers map into F_r and back without ambiguity (zk.field)."""

from __future__ import annotations

import numpy as np
import pytest

from zk.curve import CURVE_ORDER
from zk.field import (
    MAX_BOUND,
    FieldRangeError,
    aggregate_bound,
    as_integer_vector,
    check_bound,
    check_vector_bound,
    decode,
    decode_vector,
    encode,
    encode_vector,
)

BOUND = 2**31 - 1


@pytest.mark.parametrize("value", [0, 1, -1, 12345, -12345, BOUND, -BOUND])
def test_round_trip(value: int) -> None:
    assert decode(encode(value, BOUND), BOUND) == value


def test_negative_values_map_to_r_minus_magnitude() -> None:
    assert encode(-5) == CURVE_ORDER - 5
    assert encode(5) == 5


def test_vector_round_trip_keeps_int64() -> None:
    values = np.array([3, -7, 0, BOUND, -BOUND], dtype=np.int32)
    decoded = decode_vector(encode_vector(values, BOUND), BOUND)
    assert decoded.dtype == np.int64
    assert decoded.tolist() == values.tolist()


def test_decode_rejects_the_gap_between_bounds() -> None:
    for element in (BOUND + 1, CURVE_ORDER // 2, CURVE_ORDER - BOUND - 1):
        with pytest.raises(FieldRangeError, match="decodes to no value"):
            decode(element, BOUND)


def test_decode_rejects_non_canonical_elements() -> None:
    with pytest.raises(FieldRangeError, match="canonical"):
        decode(CURVE_ORDER, BOUND)
    with pytest.raises(FieldRangeError):
        decode(-1, BOUND)


def test_encode_rejects_values_beyond_the_bound() -> None:
    with pytest.raises(FieldRangeError, match="exceeds"):
        encode(BOUND + 1, BOUND)
    with pytest.raises(FieldRangeError, match="coordinate 1"):
        check_vector_bound(np.array([0, -(BOUND + 1)], dtype=np.int64), BOUND)


def test_bound_must_keep_the_map_injective() -> None:
    assert check_bound(MAX_BOUND) == MAX_BOUND
    with pytest.raises(FieldRangeError):
        check_bound(MAX_BOUND + 1)
    # at the largest bound, +b and −b are still different field elements
    assert encode(MAX_BOUND) != encode(-MAX_BOUND)


def test_int64_minimum_is_out_of_every_int64_bound() -> None:
    values = np.array([np.iinfo(np.int64).min], dtype=np.int64)
    with pytest.raises(FieldRangeError):
        check_vector_bound(values, 2**62)


def test_big_integers_stay_exact() -> None:
    values = as_integer_vector(np.array([2**70, -(2**70), 1], dtype=object))
    assert values.dtype == object
    assert decode_vector(encode_vector(values), MAX_BOUND).tolist() == [2**70, -(2**70), 1]
    assert as_integer_vector(np.array([1, 2], dtype=object)).dtype == np.int64


def test_floats_and_bools_are_refused() -> None:
    with pytest.raises(TypeError):
        as_integer_vector(np.array([0.5]))
    with pytest.raises(TypeError):
        as_integer_vector(np.array([True]))
    with pytest.raises(TypeError):
        as_integer_vector(np.array([1, 0.5], dtype=object))


def test_aggregate_bound_covers_weighted_sums() -> None:
    assert aggregate_bound(100, [3, 0, 5]) == 800
    with pytest.raises(FieldRangeError):
        aggregate_bound(MAX_BOUND, [1, 1])
