"""Data sets, the schema a task publishes for them, and the file formats data owners bring.

Data owners' files are untrusted input for their own client, so every loader validates
against the task's `DataSchema` and fails with a `DataSchemaError` that says what to fix.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from marketplace.errors import DataSchemaError

BUILTIN_DATASETS = ("digits", "breast_cancer")


@dataclass(frozen=True)
class DataSchema:
    """What a task's data looks like: feature count, class count, optional feature names."""

    num_features: int
    num_classes: int
    feature_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _is_int(self.num_features) or self.num_features < 1:
            raise ValueError(f"num_features must be a positive integer, got {self.num_features!r}")
        if not _is_int(self.num_classes) or self.num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {self.num_classes!r}")
        names = tuple(self.feature_names)
        if names and len(names) != self.num_features:
            raise ValueError(f"{len(names)} feature names given for {self.num_features} features")
        if any(not isinstance(name, str) for name in names):
            raise ValueError("feature names must be strings")
        object.__setattr__(self, "feature_names", names)

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_features": self.num_features,
            "num_classes": self.num_classes,
            "feature_names": list(self.feature_names),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataSchema:
        if not isinstance(data, Mapping):
            raise ValueError(f"data schema must be a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - {"num_features", "num_classes", "feature_names"})
        if unknown:
            raise ValueError(f"unknown data schema field(s): {', '.join(unknown)}")
        missing = sorted({"num_features", "num_classes"} - set(data))
        if missing:
            raise ValueError(f"data schema is missing field(s): {', '.join(missing)}")
        names = data.get("feature_names", ())
        if not isinstance(names, list | tuple):
            raise ValueError("data schema field 'feature_names' must be a list of strings")
        return cls(num_features=data["num_features"], num_classes=data["num_classes"], feature_names=tuple(names))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class Dataset:
    """Features `X` (float32, n × f) and integer labels `y` (int64, n)."""

    X: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        self.X = np.asarray(self.X, dtype=np.float32)
        self.y = np.asarray(self.y, dtype=np.int64)
        if self.X.ndim != 2 or self.y.ndim != 1 or self.X.shape[0] != self.y.shape[0]:
            raise ValueError(f"X must be n × f and y length n; got X {self.X.shape}, y {self.y.shape}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, indices: np.ndarray) -> Dataset:
        """The rows at `indices`, as a new data set."""
        return Dataset(self.X[indices], self.y[indices])


# --- built-in data sets -----------------------------------------------------------------------


def load_builtin(name: str) -> tuple[Dataset, DataSchema]:
    """A scikit-learn bundled data set, scaled to a range plain SGD handles well.

    digits: pixel intensities 0..16 divided by 16 (a fixed, public range: no statistics).
    breast_cancer: each feature standardised to mean 0, variance 1. The statistics come from
    the bundled file itself, which is public (it ships with scikit-learn), so they reveal
    nothing about any participant's private data; every role computes the same numbers.
    With private data, the task owner must take such statistics only from data it holds
    (its validation set) and publish them, never pool data owners' rows to compute them.
    """
    from sklearn import datasets  # imported here: loading scikit-learn is slow and rarely needed

    if name == "digits":
        bunch = datasets.load_digits()
        features = np.asarray(bunch.data, dtype=np.float64) / 16.0
    elif name == "breast_cancer":
        bunch = datasets.load_breast_cancer()
        raw = np.asarray(bunch.data, dtype=np.float64)
        features = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    else:
        raise DataSchemaError(
            f"unknown built-in data set {name!r}", hint=f"choose one of {', '.join(BUILTIN_DATASETS)}"
        )
    labels = np.asarray(bunch.target, dtype=np.int64)
    schema = DataSchema(
        num_features=features.shape[1],
        num_classes=int(labels.max()) + 1,
        feature_names=tuple(str(n) for n in bunch.feature_names),
    )
    return Dataset(features.astype(np.float32), labels), schema


# --- splits -----------------------------------------------------------------------------------


def split_holdout(
    ds: Dataset, val_fraction: float, test_fraction: float, seed: int
) -> tuple[Dataset, Dataset, Dataset]:
    """Stratified (train, validation, test) split; each class is divided in the same proportions.

    The task owner keeps validation (for contributions) and test (for reporting); the rest is
    shared out among data owners.
    """
    if not (0.0 <= val_fraction < 1.0 and 0.0 <= test_fraction < 1.0 and val_fraction + test_fraction < 1.0):
        raise ValueError("val_fraction and test_fraction must be in [0, 1) and sum to less than 1")
    rng = np.random.default_rng(seed)
    train_parts, val_parts, test_parts = [], [], []
    for label in np.unique(ds.y):
        members = rng.permutation(np.flatnonzero(ds.y == label))
        n_test = round(test_fraction * members.size)
        n_val = round(val_fraction * members.size)
        test_parts.append(members[:n_test])
        val_parts.append(members[n_test : n_test + n_val])
        train_parts.append(members[n_test + n_val :])

    def take(parts: list[np.ndarray]) -> Dataset:
        return ds.subset(np.sort(np.concatenate(parts)).astype(np.int64))

    return take(train_parts), take(val_parts), take(test_parts)


def dirichlet_split(y: np.ndarray, n_owners: int, alpha: float, seed: int, min_size: int = 10) -> list[np.ndarray]:
    """Non-IID partition: each class is shared among owners in Dirichlet(alpha) proportions.

    Small alpha gives each owner few classes; large alpha approaches an even split. Returns
    disjoint sorted index arrays that cover every sample, each with at least `min_size`
    entries. Draws are redone while an owner is too small; after a bounded number of tries the
    smallest owners take random samples from the largest, so the call always ends.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    if n_owners < 1:
        raise ValueError("n_owners must be at least 1")
    if alpha <= 0:
        raise ValueError("alpha must be positive")
    if n_owners * min_size > y.size:
        raise ValueError(f"{y.size} samples cannot give {n_owners} owners at least {min_size} each")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    owners: list[list[np.ndarray]] = []
    for _attempt in range(100):
        owners = [[] for _ in range(n_owners)]
        for label in classes:
            members = rng.permutation(np.flatnonzero(y == label))
            shares = rng.dirichlet(np.full(n_owners, alpha))
            cuts = (np.cumsum(shares)[:-1] * members.size).astype(np.int64)
            for owner, part in enumerate(np.split(members, cuts)):
                owners[owner].append(part)
        sizes = [sum(p.size for p in parts) for parts in owners]
        if min(sizes) >= min_size:
            break
    result = [np.concatenate(parts).astype(np.int64) for parts in owners]
    _top_up(result, min_size, rng)
    return [np.sort(indices) for indices in result]


def _top_up(partition: list[np.ndarray], min_size: int, rng: np.random.Generator) -> None:
    """Move random samples from the largest owner to each owner below `min_size`, in place."""
    for owner in range(len(partition)):
        while partition[owner].size < min_size:
            donor = max(range(len(partition)), key=lambda i: partition[i].size)
            need = min(min_size - partition[owner].size, partition[donor].size - min_size)
            moved = rng.choice(partition[donor].size, size=need, replace=False)
            partition[owner] = np.concatenate([partition[owner], partition[donor][moved]])
            partition[donor] = np.delete(partition[donor], moved)


# --- file formats -----------------------------------------------------------------------------


def encode_npz(ds: Dataset) -> bytes:
    """An .npz file with arrays `X` (float32) and `y` (int64)."""
    buffer = io.BytesIO()
    np.savez(buffer, X=ds.X.astype(np.float32), y=ds.y.astype(np.int64))
    return buffer.getvalue()


def decode_npz(data: bytes, schema: DataSchema) -> Dataset:
    """Parse an .npz data file without ever unpickling, and check it against the schema."""
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:  # numpy's refusal of pickled content, or an unparseable .npy
        raise DataSchemaError(
            f"data file is not a plain .npz archive: {exc}",
            hint="save it with numpy.savez(path, X=features, y=labels); pickled objects are refused",
        ) from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataSchemaError(f"data file is not a readable .npz archive: {exc}") from exc
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataSchemaError(
            "data file holds a single array, not an .npz archive with X and y",
            hint="save it with numpy.savez(path, X=features, y=labels)",
        )
    with loaded:
        keys = set(loaded.files)
        if keys != {"X", "y"}:
            raise DataSchemaError(
                f"data file must hold exactly the arrays X and y; found {sorted(keys) or 'none'}",
                hint="save it with numpy.savez(path, X=features, y=labels)",
            )
        try:
            features, labels = loaded["X"], loaded["y"]
        except ValueError as exc:  # object arrays need pickle, which is never allowed
            raise DataSchemaError(
                f"cannot read arrays from data file: {exc}",
                hint="store plain numeric arrays; pickled objects are refused",
            ) from exc
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise DataSchemaError(f"cannot read arrays from data file: {exc}") from exc
    return validate_arrays(features, labels, schema)


def load_csv(path: str | Path, schema: DataSchema) -> Dataset:
    """A CSV file of numbers, one sample a row, label in the last column; a header row is optional."""
    try:
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
    except OSError as exc:
        raise DataSchemaError(f"cannot read {path}: {exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataSchemaError(f"{path} is not a text CSV file: {exc}") from exc
    rows_with_numbers = [(line, row) for line, row in enumerate(rows, start=1) if any(c.strip() for c in row)]
    if rows_with_numbers and not _is_numeric_row(rows_with_numbers[0][1]):
        rows_with_numbers = rows_with_numbers[1:]  # header
    width = schema.num_features + 1
    features = np.empty((len(rows_with_numbers), schema.num_features), dtype=np.float64)
    labels = np.empty(len(rows_with_numbers), dtype=np.float64)
    for row_index, (line, row) in enumerate(rows_with_numbers):
        if len(row) != width:
            raise DataSchemaError(
                f"{path} line {line}: {len(row)} columns; expected {width} "
                f"({schema.num_features} features and the label last)"
            )
        try:
            values = [float(cell) for cell in row]
        except ValueError as exc:
            raise DataSchemaError(f"{path} line {line}: not a number ({exc})") from exc
        features[row_index] = values[:-1]
        labels[row_index] = values[-1]
    if labels.size and not np.all(np.isfinite(labels) & (labels == np.round(labels))):
        bad = int(np.flatnonzero(~(np.isfinite(labels) & (labels == np.round(labels))))[0])
        raise DataSchemaError(f"{path} line {rows_with_numbers[bad][0]}: label {labels[bad]} is not an integer")
    return validate_arrays(features, labels.astype(np.int64), schema)


def _is_numeric_row(row: list[str]) -> bool:
    try:
        for cell in row:
            float(cell)
    except ValueError:
        return False
    return True


def load_data_file(path: str | Path, schema: DataSchema) -> Dataset:
    """Load a data owner's .csv or .npz file and check it against the task's schema."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return load_csv(path, schema)
    if suffix == ".npz":
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataSchemaError(f"cannot read {path}: {exc}") from exc
        return decode_npz(data, schema)
    raise DataSchemaError(f"unsupported data file type {suffix or '(none)'!r} for {path}", hint="use .csv or .npz")


def validate_arrays(features: np.ndarray, labels: np.ndarray, schema: DataSchema) -> Dataset:
    """Check shapes, dtypes, finiteness and label range, and return a typed `Dataset`."""
    if features.dtype.kind not in "fiu":
        raise DataSchemaError(f"X has dtype {features.dtype}; expected numbers (float or integer)")
    if labels.dtype.kind not in "iu":
        raise DataSchemaError(f"y has dtype {labels.dtype}; expected integer class labels")
    if features.ndim != 2 or features.shape[1] != schema.num_features:
        raise DataSchemaError(f"X has shape {features.shape}; expected (n, {schema.num_features}) for this task")
    if labels.ndim != 1 or labels.shape[0] != features.shape[0]:
        raise DataSchemaError(f"y has shape {labels.shape}; expected ({features.shape[0]},), one label per row")
    if labels.size == 0:
        raise DataSchemaError("data file holds no samples")
    with np.errstate(over="ignore"):  # values beyond float32 become inf and are reported below
        as_float32 = features.astype(np.float32)
    if not np.isfinite(as_float32).all():
        row = int(np.flatnonzero(~np.isfinite(as_float32).all(axis=1))[0])
        raise DataSchemaError(f"X has non-finite values (NaN, inf, or beyond float32 range), first in row {row}")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= schema.num_classes:
        raise DataSchemaError(f"labels range over {low}..{high}; this task has classes 0..{schema.num_classes - 1}")
    return Dataset(as_float32, labels.astype(np.int64))
