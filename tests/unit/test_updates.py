"""The update wire format: fixed point, safetensors, the envelope and its refusals."""

from __future__ import annotations

import contextlib
import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from marketplace.errors import UpdateFormatError
from marketplace.models import ModelSpec, build_model, expected_shapes, model_to_arrays
from marketplace.updates import (
    DEFAULT_MAX_UPDATE_BYTES,
    UpdateHeader,
    decode_tensors,
    dequantize,
    encode_tensors,
    max_model_bytes,
    max_update_bytes,
    pack_model,
    pack_update,
    quantize,
    storage_dtype,
    unpack_model,
    unpack_update,
)

SPEC = ModelSpec("mlp", 6, 3, (4,))
SHAPES = expected_shapes(SPEC)
SCALE = 16
BOUND = 2**31 - 1
SENDER = "0x" + "12" * 20
HEADER = UpdateHeader(task_id=7, round=2, num_samples=120, scale_bits=SCALE, sender=SENDER)


def quantized_update(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return quantize({n: rng.normal(0, 0.1, s).astype(np.float32) for n, s in SHAPES.items()}, SCALE)


def unpack(data: bytes, **overrides: object) -> tuple[UpdateHeader, dict[str, np.ndarray]]:
    options: dict = {
        "expected_shapes": SHAPES,
        "scale_bits": SCALE,
        "bound": BOUND,
        "max_bytes": max_update_bytes(SHAPES),
    }
    options.update(overrides)
    return unpack_update(data, **options)


def raw_update(arrays: dict[str, np.ndarray], header: UpdateHeader = HEADER) -> bytes:
    """An update built around the packer's own checks, as a malicious sender would."""
    return encode_tensors(arrays, header.to_metadata())


# --- quantize ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    values=hnp.arrays(np.float32, st.integers(0, 50), elements=st.floats(-1000, 1000, width=32)),
    scale_bits=st.integers(0, 20),
)
def test_quantize_round_trip_error_is_at_most_half_a_step(values: np.ndarray, scale_bits: int) -> None:
    back = dequantize(quantize({"t": values}, scale_bits), scale_bits)["t"]
    assert back.dtype == np.float32
    assert np.all(np.abs(back.astype(np.float64) - values) <= 2.0 ** -(scale_bits + 1))


def test_quantize_rounds_to_the_nearest_step() -> None:
    q = quantize({"t": np.array([0.5, -0.25, 0.3], np.float32)}, 2)["t"]
    assert q.tolist() == [2, -1, 1]


def test_storage_is_int32_when_the_bound_fits() -> None:
    assert quantize({"t": np.ones(2)}, 4)["t"].dtype == np.int32
    assert quantize({"t": np.ones(2)}, 4, bound=2**40)["t"].dtype == np.int64
    assert storage_dtype(2**31 - 1) == np.int32 and storage_dtype(2**31) == np.int64


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_quantize_refuses_non_finite_values_naming_the_tensor(bad: float) -> None:
    with pytest.raises(UpdateFormatError, match=r"non-finite values in tensor layers.0.bias"):
        quantize({"layers.0.weight": np.zeros(2), "layers.0.bias": np.array([0.0, bad])}, SCALE)


def test_quantize_refuses_values_beyond_the_bound() -> None:
    quantize({"t": np.array([1000.0])}, 4, bound=16000)
    with pytest.raises(UpdateFormatError, match=r"tensor t has a value of magnitude 1001.*bound 16000"):
        quantize({"t": np.array([-1001.0])}, 4, bound=16000)
    with pytest.raises(UpdateFormatError, match=r"tensor big"):
        quantize({"big": np.array([1e6], np.float32)}, 16)  # 2^36 > int32 bound


@pytest.mark.parametrize("scale_bits", [-1, 53, 2.5])
def test_quantize_refuses_bad_scale_bits(scale_bits: object) -> None:
    with pytest.raises(UpdateFormatError, match=r"scale_bits"):
        quantize({"t": np.ones(1)}, scale_bits)  # type: ignore[arg-type]


def test_dequantize_refuses_float_input() -> None:
    with pytest.raises(UpdateFormatError, match=r"tensor t has dtype float32"):
        dequantize({"t": np.ones(1, np.float32)}, 4)


# --- tensors ----------------------------------------------------------------------------------


def test_tensors_round_trip_with_metadata() -> None:
    arrays = {"a": np.arange(6, dtype=np.int32).reshape(2, 3), "b": np.ones(2, np.float32)}
    decoded, metadata = decode_tensors(encode_tensors(arrays, {"k": "v"}), max_bytes=10_000)
    assert metadata == {"k": "v"}
    assert set(decoded) == {"a", "b"}
    assert np.array_equal(decoded["a"], arrays["a"]) and decoded["a"].dtype == np.int32


def test_decode_tensors_checks_size_before_parsing() -> None:
    with pytest.raises(UpdateFormatError, match=r"limit for this task is 10"):
        decode_tensors(b"\xff" * 11, max_bytes=10)


def header_bytes(header: object) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"short",
        b"\xff" * 64,
        struct.pack("<Q", 10**9) + b"{}",
        header_bytes([1, 2]),
        header_bytes({"__metadata__": {"k": 1}}),
        struct.pack("<Q", 4) + b"\xff\xfe{}",
        header_bytes({"t": {"dtype": "I32", "shape": [4], "data_offsets": [0, 16]}}),  # data missing
        header_bytes({"t": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}) + b"\0\0",
        header_bytes({"t": {"dtype": "I32", "shape": [2], "data_offsets": [0, 4]}}) + b"\0" * 4,
    ],
)
def test_decode_tensors_turns_malformed_bytes_into_update_format_error(data: bytes) -> None:
    with pytest.raises(UpdateFormatError):
        decode_tensors(data, max_bytes=10_000)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_decode_tensors_never_raises_anything_else(data: bytes) -> None:
    with contextlib.suppress(UpdateFormatError):
        decode_tensors(data, max_bytes=10_000)


# --- update envelope --------------------------------------------------------------------------


def test_update_round_trip() -> None:
    q = quantized_update()
    header, arrays = unpack(pack_update(HEADER, q), expected_task_id=7, expected_round=2)
    assert header == HEADER
    assert list(arrays) == list(SHAPES)
    for name in SHAPES:
        assert arrays[name].dtype == np.int64
        assert np.array_equal(arrays[name], q[name])


def test_header_round_trips_through_metadata() -> None:
    big = UpdateHeader(
        task_id=2**256 - 1, round=0, num_samples=1, scale_bits=0, sender=SENDER.upper().replace("X", "x")
    )
    assert UpdateHeader.from_metadata(big.to_metadata()) == big


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"num_samples": 0}, "num_samples"),
        ({"round": -1}, "round"),
        ({"sender": "0x1234"}, "0x address"),
        ({"version": 2}, "version 2 is not supported"),
        ({"scale_bits": 60}, "scale_bits"),
    ],
)
def test_header_refuses_bad_fields(fields: dict, message: str) -> None:
    values = {"task_id": 1, "round": 0, "num_samples": 5, "scale_bits": 8, "sender": SENDER, **fields}
    with pytest.raises(UpdateFormatError, match=message):
        UpdateHeader(**values)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format": "fedmarket-model"}, "not a fedmarket update"),
        ({"round": "-1"}, "round is not a decimal integer"),
        ({"round": "01"}, "round is not a decimal integer"),
        ({"task_id": "1" * 100}, "task_id is not a decimal integer"),
        ({"nonce": "5"}, "unknown update header field"),
    ],
)
def test_unpack_refuses_bad_headers(change: dict, message: str) -> None:
    metadata = {**HEADER.to_metadata(), **change}
    with pytest.raises(UpdateFormatError, match=message):
        unpack(encode_tensors(quantized_update(), metadata))


def test_unpack_refuses_missing_header_field() -> None:
    metadata = HEADER.to_metadata()
    del metadata["sender"]
    with pytest.raises(UpdateFormatError, match=r"missing field.*sender"):
        unpack(encode_tensors(quantized_update(), metadata))


def test_unpack_refuses_wrong_scale_bits_task_and_round() -> None:
    data = pack_update(HEADER, quantized_update())
    with pytest.raises(UpdateFormatError, match=r"scale_bits 16; this task uses 12"):
        unpack(data, scale_bits=12)
    with pytest.raises(UpdateFormatError, match=r"for task 7, not task 8"):
        unpack(data, expected_task_id=8)
    with pytest.raises(UpdateFormatError, match=r"for round 2, not round 3"):
        unpack(data, expected_round=3)


def test_unpack_refuses_wrong_shape() -> None:
    q = quantized_update()
    q["layers.1.weight"] = np.zeros((4, 3), np.int32)
    with pytest.raises(UpdateFormatError, match=r"tensor layers.1.weight has shape \(4, 3\); expected \(3, 4\)"):
        unpack(raw_update(q))


def test_unpack_refuses_missing_and_extra_tensors() -> None:
    q = quantized_update()
    del q["layers.0.bias"]
    with pytest.raises(UpdateFormatError, match=r"missing tensor.*layers.0.bias"):
        unpack(raw_update(q))
    q = {**quantized_update(), "smuggled": np.zeros(1, np.int32)}
    with pytest.raises(UpdateFormatError, match=r"unexpected tensor.*smuggled"):
        unpack(raw_update(q))


def test_unpack_refuses_float_tensors() -> None:
    q = quantized_update()
    q["layers.0.bias"] = np.zeros(4, np.float32)
    with pytest.raises(UpdateFormatError, match=r"tensor layers.0.bias has dtype float32; expected integer"):
        unpack(raw_update(q))
    q["layers.0.bias"] = np.array([0, np.nan, 0, 0], np.float32)
    with pytest.raises(UpdateFormatError, match=r"non-finite values in tensor layers.0.bias"):
        unpack(raw_update(q))
    q["layers.0.bias"] = np.array([0, 0, -np.inf, 0], np.float64)
    with pytest.raises(UpdateFormatError, match=r"non-finite values in tensor layers.0.bias"):
        unpack(raw_update(q))


def test_unpack_refuses_unsigned_and_bool_tensors() -> None:
    for dtype in (np.uint32, np.bool_):
        q = quantized_update()
        q["layers.1.bias"] = np.zeros(3, dtype)
        with pytest.raises(UpdateFormatError, match=r"tensor layers.1.bias has dtype"):
            unpack(raw_update(q))


def test_unpack_refuses_out_of_range_values() -> None:
    q = {name: np.zeros(shape, np.int32) for name, shape in SHAPES.items()}
    q["layers.1.bias"] = np.array([0, -1001, 0], np.int32)
    unpack(raw_update(q), bound=1001)
    with pytest.raises(
        UpdateFormatError, match=r"tensor layers.1.bias has a value of magnitude 1001, beyond the bound 1000"
    ):
        unpack(raw_update(q), bound=1000)
    q["layers.1.bias"] = np.array([0, np.iinfo(np.int64).min, 0], np.int64)
    with pytest.raises(UpdateFormatError, match=r"layers.1.bias.*beyond the bound"):
        unpack(raw_update(q))


def test_unpack_refuses_oversized_and_garbage_bytes() -> None:
    data = pack_update(HEADER, quantized_update())
    with pytest.raises(UpdateFormatError, match=r"limit for this task"):
        unpack(data, max_bytes=len(data) - 1)
    with pytest.raises(UpdateFormatError):
        unpack(b"\x00garbage" * 10)
    with pytest.raises(UpdateFormatError):
        unpack(data[: len(data) // 2])


def test_pack_update_refuses_unquantized_arrays() -> None:
    with pytest.raises(UpdateFormatError, match=r"quantize the update first"):
        pack_update(HEADER, {"layers.0.bias": np.zeros(4, np.float32)})


# --- size limits ------------------------------------------------------------------------------


def test_limits_admit_the_widest_well_formed_update() -> None:
    big_spec = ModelSpec("mlp", 64, 10, (32,))
    shapes = expected_shapes(big_spec)
    widest = quantize({n: np.full(s, 1.0) for n, s in shapes.items()}, 16, bound=2**40)
    header = UpdateHeader(task_id=2**256 - 1, round=2**64, num_samples=10**9, scale_bits=16, sender=SENDER)
    data = pack_update(header, widest)
    assert len(data) <= max_update_bytes(shapes) < DEFAULT_MAX_UPDATE_BYTES
    assert max_update_bytes(shapes) < len(data) + 32 * 1024  # the slack stays small
    model = pack_model(model_to_arrays(build_model(big_spec, 0)), {"round": "3"})
    assert len(model) <= max_model_bytes(shapes) < len(model) + 32 * 1024


# --- global model files -----------------------------------------------------------------------


def test_model_round_trip() -> None:
    arrays = model_to_arrays(build_model(SPEC, seed=0))
    decoded, metadata = unpack_model(pack_model(arrays, {"round": "3"}), SHAPES, max_model_bytes(SHAPES))
    assert metadata == {"round": "3"}
    assert list(decoded) == list(SHAPES)
    assert all(np.array_equal(decoded[k], arrays[k]) for k in arrays)


def test_model_files_are_checked() -> None:
    arrays = model_to_arrays(build_model(SPEC, seed=0))
    limit = max_model_bytes(SHAPES)
    with pytest.raises(UpdateFormatError, match=r"reserved"):
        pack_model(arrays, {"format": "x"})
    with pytest.raises(UpdateFormatError, match=r"model tensors are float32"):
        pack_model({**arrays, "layers.0.bias": np.zeros(4)}, {})
    bad = {**arrays, "layers.0.bias": np.array([0, 0, np.inf, 0], np.float32)}
    with pytest.raises(UpdateFormatError, match=r"non-finite values in tensor layers.0.bias"):
        unpack_model(encode_tensors(bad, {"format": "fedmarket-model"}), SHAPES, limit)
    with pytest.raises(UpdateFormatError, match=r"not a fedmarket model"):
        unpack_model(pack_update(HEADER, quantized_update()), SHAPES, limit)
    with pytest.raises(UpdateFormatError, match=r"missing tensor"):
        unpack_model(pack_model({"layers.0.bias": arrays["layers.0.bias"]}, {}), SHAPES, limit)
    with pytest.raises(UpdateFormatError, match=r"limit"):
        unpack_model(pack_model(arrays, {}), SHAPES, 100)


@settings(max_examples=100, deadline=None)
@given(position=st.integers(0, 10_000), value=st.integers(0, 255))
def test_unpack_turns_any_corrupted_byte_into_update_format_error_or_accepts(position: int, value: int) -> None:
    data = bytearray(pack_update(HEADER, quantized_update()))
    data[position % len(data)] = value
    try:
        _, arrays = unpack(bytes(data))
    except UpdateFormatError:
        return
    assert list(arrays) == list(SHAPES)  # a flip inside tensor data may still be a valid update
    assert all(np.abs(a).max() <= BOUND for a in arrays.values())
