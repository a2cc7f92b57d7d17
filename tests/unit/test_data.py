"""Data sets, splits and data-file validation."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketplace.data import (
    DataSchema,
    Dataset,
    decode_npz,
    dirichlet_split,
    encode_npz,
    load_builtin,
    load_csv,
    load_data_file,
    split_holdout,
)
from marketplace.errors import DataSchemaError

SCHEMA = DataSchema(num_features=3, num_classes=4)


def small_dataset(n: int = 12) -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset(rng.normal(size=(n, 3)).astype(np.float32), np.arange(n) % 4)


# --- schema and built-ins ---------------------------------------------------------------------


def test_schema_round_trips_through_dict() -> None:
    schema = DataSchema(2, 3, ("a", "b"))
    assert DataSchema.from_dict(schema.to_dict()) == schema
    assert DataSchema.from_dict({"num_features": 2, "num_classes": 3}) == DataSchema(2, 3)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"num_features": 0, "num_classes": 3}, "num_features"),
        ({"num_features": 2, "num_classes": 1}, "num_classes"),
        ({"num_features": 2, "num_classes": 3, "feature_names": ["a"]}, "1 feature names given for 2"),
        ({"num_features": 2}, "missing"),
        ({"num_features": 2, "num_classes": 3, "colour": "red"}, "unknown"),
    ],
)
def test_bad_schemas_are_refused(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DataSchema.from_dict(data)


def test_load_builtin_digits_is_scaled_to_unit_range() -> None:
    ds, schema = load_builtin("digits")
    assert (len(ds), schema.num_features, schema.num_classes) == (1797, 64, 10)
    assert ds.X.dtype == np.float32 and ds.y.dtype == np.int64
    assert ds.X.min() == 0.0 and ds.X.max() == 1.0


def test_load_builtin_breast_cancer_is_standardised() -> None:
    ds, schema = load_builtin("breast_cancer")
    assert (len(ds), schema.num_features, schema.num_classes) == (569, 30, 2)
    assert np.allclose(ds.X.mean(axis=0), 0, atol=1e-5)
    assert np.allclose(ds.X.std(axis=0), 1, atol=1e-4)
    assert len(schema.feature_names) == 30


def test_load_builtin_unknown_name() -> None:
    with pytest.raises(DataSchemaError, match=r"unknown built-in"):
        load_builtin("mnist")


# --- splits -----------------------------------------------------------------------------------


def test_split_holdout_is_stratified_disjoint_and_deterministic() -> None:
    ds, _ = load_builtin("digits")
    train, val, test = split_holdout(ds, 0.1, 0.2, seed=3)
    assert len(train) + len(val) + len(test) == len(ds)
    for part, fraction in ((val, 0.1), (test, 0.2)):
        for label in range(10):
            expected = fraction * np.sum(ds.y == label)
            assert abs(np.sum(part.y == label) - expected) <= 1
    rows = {r.tobytes() for part in (train, val, test) for r in np.column_stack([part.X, part.y])}
    assert len(rows) == len({r.tobytes() for r in np.column_stack([ds.X, ds.y])})
    again = split_holdout(ds, 0.1, 0.2, seed=3)
    assert np.array_equal(again[2].X, test.X)


def test_split_holdout_allows_empty_validation() -> None:
    train, val, test = split_holdout(small_dataset(40), 0.0, 0.25, seed=0)
    assert len(val) == 0 and len(test) == 8 and len(train) == 32


def label_skew(y: np.ndarray, parts: list[np.ndarray]) -> float:
    """Mean total-variation distance between each owner's label mix and the overall mix."""
    classes = np.unique(y)
    overall = np.array([np.mean(y == c) for c in classes])
    return float(
        np.mean([0.5 * np.abs(np.array([np.mean(y[p] == c) for c in classes]) - overall).sum() for p in parts])
    )


@settings(max_examples=30, deadline=None)
@given(
    n_owners=st.integers(1, 8),
    alpha=st.sampled_from([0.05, 0.3, 1.0, 100.0]),
    seed=st.integers(0, 2**32 - 1),
    min_size=st.integers(0, 20),
)
def test_dirichlet_split_partitions_with_min_size(n_owners: int, alpha: float, seed: int, min_size: int) -> None:
    y = np.repeat(np.arange(5), 40)
    parts = dirichlet_split(y, n_owners, alpha, seed, min_size=min_size)
    assert len(parts) == n_owners
    joined = np.concatenate(parts)
    assert np.array_equal(np.sort(joined), np.arange(y.size))  # disjoint and covering
    assert all(p.size >= min_size for p in parts)
    assert all(np.array_equal(p, np.sort(p)) and p.dtype == np.int64 for p in parts)


def test_dirichlet_split_is_deterministic_in_the_seed() -> None:
    y = np.repeat(np.arange(10), 50)
    first = dirichlet_split(y, 4, 0.5, seed=11)
    again = dirichlet_split(y, 4, 0.5, seed=11)
    other = dirichlet_split(y, 4, 0.5, seed=12)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_small_alpha_skews_labels_more_than_large_alpha() -> None:
    ds, _ = load_builtin("digits")
    skewed = np.mean([label_skew(ds.y, dirichlet_split(ds.y, 5, 0.1, seed)) for seed in range(5)])
    even = np.mean([label_skew(ds.y, dirichlet_split(ds.y, 5, 100.0, seed)) for seed in range(5)])
    assert skewed > 0.4
    assert even < 0.1
    assert skewed > 4 * even


def test_dirichlet_split_refuses_impossible_min_size() -> None:
    with pytest.raises(ValueError, match=r"cannot give"):
        dirichlet_split(np.zeros(20, dtype=np.int64), 3, 1.0, seed=0, min_size=10)


# --- npz --------------------------------------------------------------------------------------


def test_npz_round_trip() -> None:
    ds = small_dataset()
    back = decode_npz(encode_npz(ds), SCHEMA)
    assert np.array_equal(back.X, ds.X) and np.array_equal(back.y, ds.y)
    assert back.X.dtype == np.float32 and back.y.dtype == np.int64


def npz_bytes(**arrays: object) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def test_decode_npz_refuses_pickled_objects() -> None:
    data = npz_bytes(X=np.array([object()] * 3, dtype=object).reshape(1, 3), y=np.array([0]))
    with pytest.raises(DataSchemaError, match=r"pickled objects are refused"):
        decode_npz(data, SCHEMA)


def test_decode_npz_refuses_a_raw_pickle() -> None:
    with pytest.raises(DataSchemaError, match=r"not a plain .npz"):
        decode_npz(pickle.dumps({"X": [[1, 2, 3]], "y": [0]}), SCHEMA)


def test_decode_npz_refuses_garbage_and_truncation() -> None:
    with pytest.raises(DataSchemaError):
        decode_npz(b"definitely not a zip file", SCHEMA)
    with pytest.raises(DataSchemaError):
        decode_npz(encode_npz(small_dataset())[:100], SCHEMA)


def test_decode_npz_refuses_a_single_npy_array() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((2, 3)))
    with pytest.raises(DataSchemaError, match=r"single array"):
        decode_npz(buffer.getvalue(), SCHEMA)


ROWS = np.zeros((2, 3), dtype=np.float32)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"X": ROWS}, "exactly the arrays X and y"),
        ({"X": ROWS, "y": np.zeros(2, np.int64), "z": ROWS}, "exactly the arrays X and y"),
        ({"X": np.zeros((2, 4), np.float32), "y": np.zeros(2, np.int64)}, r"expected \(n, 3\)"),
        ({"X": ROWS, "y": np.zeros(3, np.int64)}, "one label per row"),
        ({"X": ROWS, "y": np.zeros(2, np.float32)}, "integer class labels"),
        ({"X": ROWS.astype(str), "y": np.zeros(2, np.int64)}, "expected numbers"),
        ({"X": ROWS, "y": np.array([0, 4])}, r"classes 0\.\.3"),
        ({"X": ROWS, "y": np.array([-1, 0])}, "labels range"),
        ({"X": np.array([[0, 0, 0], [0, np.inf, 0]]), "y": np.zeros(2, np.int64)}, "non-finite.*row 1"),
        ({"X": np.array([[1e300, 0, 0]]), "y": np.zeros(1, np.int64)}, "non-finite"),
        ({"X": np.zeros((0, 3)), "y": np.zeros(0, np.int64)}, "no samples"),
    ],
)
def test_decode_npz_refuses_schema_violations(arrays: dict, message: str) -> None:
    with pytest.raises(DataSchemaError, match=message):
        decode_npz(npz_bytes(**arrays), SCHEMA)


# --- csv and dispatch ------------------------------------------------------------------------


def test_load_csv_with_and_without_header(tmp_path: Path) -> None:
    body = "0.5,1,2,3\n-1,0,1e-3,0\n"
    plain = tmp_path / "plain.csv"
    plain.write_text(body)
    headed = tmp_path / "headed.csv"
    headed.write_text("a,b,c,label\n" + body + "\n")
    for path in (plain, headed):
        ds = load_csv(path, SCHEMA)
        assert np.allclose(ds.X, [[0.5, 1, 2], [-1, 0, 1e-3]])
        assert ds.y.tolist() == [3, 0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,2,3\n", "line 1: 3 columns; expected 4"),
        ("1,2,3,0\n1,x,3,0\n", "line 2: not a number"),
        ("1,2,3,0.5\n", "line 1: label 0.5 is not an integer"),
        ("1,2,3,7\n", r"classes 0\.\.3"),
        ("1,nan,3,0\n", "non-finite"),
        ("a,b,c,label\n", "no samples"),
    ],
)
def test_load_csv_refuses_bad_rows(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "data.csv"
    path.write_text(text)
    with pytest.raises(DataSchemaError, match=message):
        load_csv(path, SCHEMA)


def test_load_data_file_dispatches_on_suffix(tmp_path: Path) -> None:
    ds = small_dataset()
    npz = tmp_path / "mine.NPZ"
    npz.write_bytes(encode_npz(ds))
    assert np.array_equal(load_data_file(npz, SCHEMA).y, ds.y)
    csv_path = tmp_path / "mine.csv"
    csv_path.write_text("\n".join(",".join(map(str, [*x, int(label)])) for x, label in zip(ds.X, ds.y, strict=True)))
    assert np.allclose(load_data_file(csv_path, SCHEMA).X, ds.X)
    with pytest.raises(DataSchemaError, match=r"use .csv or .npz"):
        load_data_file(tmp_path / "mine.parquet", SCHEMA)
    with pytest.raises(DataSchemaError, match=r"cannot read"):
        load_data_file(tmp_path / "absent.npz", SCHEMA)
