"""The passes over the raw n × d update matrix that every rule's statistics come from.

A round at n = 100, d = 10^6 float32 reads 400 MB per pass and is bound by memory traffic, so
each pass reads the data once, in place (no copy of rows or blocks), on a small thread pool:
- `row_dots`: Δ_i·v (or ‖Δ_i‖²) for every row, rows read front to back four at a time;
- `combine_and_dots`: u = Σ c_i Δ_i and Δ_i·u for every row, fused on cache-resident column
  chunks (one read instead of two);
- `combine_and_dots_speculating`: the same plus the combination a cosine filter is about to
  ask for (without the rows it will drop), predicted from a probe of the first columns;
- `combine_rows`: Σ c_j Δ_j over a few rows (a downdate);
- `coordinate_median`: the median of every coordinate over selected, scaled rows;
- `gram_matrix`: Δ_i·Δ_j over selected rows, blocked over columns.
The inner loops are compiled (`aggregator.rules.kernels`, imported on first use: numba costs
0.27 s to import, which commands that never aggregate should not pay).
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

# Row passes add float32 partial sums of this many entries in float64 (max relative error
# 4e-8 on float32 rows; the compiled loop keeps several vector lanes of partial sums).
ROW_CHUNK_COLUMNS = 65536
# The fused pass works on column chunks whose n rows fit this budget, so that the second sweep
# over a chunk (Δ_i·u) reads it from L2 (1 MB per core on the EPYC here): 1280 columns at n =
# 100 float32. Measured at n = 100, d = 10^6: chunks of 1024-1280 beat 256 and 4096.
FUSED_CHUNK_BYTES = 512 * 1024
FUSED_CHUNK_MIN, FUSED_CHUNK_MAX = 64, 8192
# Column block of `gram_matrix`: a k × block slice of the selected rows is copied at a time.
GRAM_BLOCK_COLUMNS = 8192
# Column block of `coordinate_trimmed_mean`: an m × block copy of the selected rows is sorted at a time.
TRIM_BLOCK = 2048
# The speculative fused pass predicts which rows a cosine filter drops from the first
# 1/PROBE_FRACTION of the columns (≈ 31k coordinates at d = 10^6).
PROBE_FRACTION = 32
# Below this many entries threads cost more than they save.
PARALLEL_MIN_ENTRIES = 1 << 22
PARALLEL_WORKERS = 2
# Work is cut into this many parts per worker thread and handed out as threads free up, so a
# thread that the OS preempts (the machine is shared) delays the pass by one part, not half.
PARTS_PER_WORKER = 4


def _kernels() -> Any:
    from aggregator.rules import kernels

    return kernels


def _workers() -> int:
    return max(1, min(PARALLEL_WORKERS, os.cpu_count() or 1))


def _parallel(parts: list[tuple[int, int]], work: Callable[[int, int], Any]) -> list[Any]:
    """Run `work` over disjoint slices on a small thread pool.

    The compiled loops release the GIL, so two threads on two cores read memory faster than
    one; none of them calls BLAS, so BLAS's own threads need no capping here.
    """
    if len(parts) == 1:
        return [work(*parts[0])]
    return list(_pool().map(lambda bounds: work(*bounds), parts))


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="fedmarket-agg")


def _split(total: int, pieces: int, align: int = 1) -> list[tuple[int, int]]:
    bounds = np.linspace(0, total, pieces + 1).astype(np.int64)
    bounds = (bounds // align) * align
    bounds[-1] = total
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


def _float_dtype(updates: np.ndarray) -> np.dtype:
    """The dtype the passes compute in: the data's when it is float32/float64, else float64."""
    return updates.dtype if updates.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def as_float(updates: np.ndarray) -> np.ndarray:
    """The matrix itself in `_float_dtype` (a float64 copy only for other dtypes: the compiled
    loops take floating-point rows)."""
    return updates.astype(_float_dtype(updates), copy=False)


def _pieces(entries: int, most: int) -> int:
    return max(1, min(_workers() * PARTS_PER_WORKER, most)) if entries > PARALLEL_MIN_ENTRIES else 1


def _over_columns(d: int, entries: int, block: int, work: Callable[[int, int], Any]) -> list[Any]:
    """`work(start, stop)` over column ranges of [0, d) aligned to `block`, on parallel threads when the pass
    touches enough `entries` to pay for them."""
    return _parallel(_split(d, _pieces(entries, -(-d // block)), block), work)


def row_dots(
    updates: np.ndarray, vector: np.ndarray | None = None, columns: tuple[int, int] | None = None
) -> np.ndarray:
    """Δ_i·vector (or Δ_i·Δ_i when `vector` is None) for every row, in float64, over all columns
    or the range `columns`.

    Rows are read front to back, four side by side per thread (streams the prefetcher follows), float32
    partial sums of ROW_CHUNK_COLUMNS entries added in float64; row ranges run on parallel
    threads. NaN and ±inf propagate, so a non-finite row gives a non-finite value.
    """
    updates = as_float(updates)
    n, d = updates.shape
    lo, hi = (0, d) if columns is None else columns
    if vector is not None:
        vector = np.ascontiguousarray(vector, dtype=updates.dtype)
        if vector.shape != (d,):
            raise ValueError(f"vector has shape {vector.shape}; expected ({d},)")
    out = np.empty(n, dtype=np.float64)
    if n == 0:
        return out
    use_vector = vector is not None
    other = vector if use_vector else updates[0]

    def rows_part(first: int, last: int) -> None:
        _kernels().row_dots_range(updates, other, use_vector, first, last, lo, hi, ROW_CHUNK_COLUMNS, out[first:last])

    _parallel(_split(n, _pieces(n * (hi - lo), -(-n // 4)), 4), rows_part)  # four-row groups stay whole
    return out


def paired_dots(rows: Sequence[np.ndarray], others: Sequence[np.ndarray]) -> np.ndarray:
    """(x_k·y_k, y_k·y_k) for each pair of equal-length rows, in float64 (float32 chunk sums, as `row_dots`);
    pairs run on parallel threads. An `other` in another dtype is converted (a copy) to its row's."""
    out = np.empty((len(rows), 2), dtype=np.float64)
    if not rows:
        return out

    def pairs_part(first: int, last: int) -> None:
        for k in range(first, last):
            x = as_float(rows[k][None, :])[0]
            y = np.ascontiguousarray(others[k], dtype=x.dtype)
            if y.shape != x.shape:
                raise ValueError(f"pair {k}: rows of shapes {x.shape} and {y.shape}")
            out[k] = _kernels().pair_dots_range(x, y, 0, x.shape[0], ROW_CHUNK_COLUMNS)

    entries = sum(int(r.shape[0]) for r in rows)
    _parallel(_split(len(rows), _pieces(entries, len(rows))), pairs_part)
    return out


def copy_rows(sources: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> None:
    """targets[k][:] = sources[k] on parallel threads (numpy's copy loop releases the GIL); reusing the targets'
    memory spares the page faults of fresh buffers."""

    def copy_part(first: int, last: int) -> None:
        for k in range(first, last):
            np.copyto(targets[k], sources[k])

    entries = sum(int(np.size(t)) for t in targets)
    _parallel(_split(len(targets), _pieces(entries, len(targets))), copy_part)


def row_squared_norms(updates: np.ndarray) -> np.ndarray:
    """Σ_j x_ij² per row in float64 (one row-sequential pass; see `row_dots`)."""
    return row_dots(updates)


def _fused_chunk(n: int, itemsize: int) -> int:
    columns = FUSED_CHUNK_BYTES // max(1, n * itemsize)
    return int(min(FUSED_CHUNK_MAX, max(FUSED_CHUNK_MIN, columns // 64 * 64)))


def _contributing(coefficients: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.asarray(coefficients) != 0.0).astype(np.int64)


_NO_ROWS = np.zeros(0, dtype=np.int64)


def _fused(
    updates: np.ndarray,
    coefficients: np.ndarray,
    aggregate: np.ndarray,
    columns: tuple[int, int],
    removed: np.ndarray = _NO_ROWS,
    without: np.ndarray | None = None,
    known: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The fused pass over a column range on parallel threads (see `kernels.fused_range`):
    fills aggregate (unless `known`) and, with `removed` rows, `without` = aggregate − Σ_removed;
    returns (Δ_i·aggregate, Δ_i·Σ_removed) in float64, summed over the threads' column parts."""
    n = updates.shape[0]
    lo, hi = columns
    rows = np.setdiff1d(_contributing(coefficients), removed).astype(np.int64)
    weights = np.asarray(coefficients).astype(updates.dtype)
    chunk = _fused_chunk(n, updates.dtype.itemsize)
    target = aggregate if without is None else without

    def columns_part(start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        dots, removed_dots = np.zeros(n), np.zeros(n)
        scratch = np.empty(chunk if removed.size else 1, dtype=updates.dtype)  # v's chunk, for a removal only
        _kernels().fused_range(
            updates, weights, rows, removed, start, stop, chunk, aggregate, known, target, scratch, dots, removed_dots
        )
        return dots, removed_dots

    if hi <= lo:
        return np.zeros(n), np.zeros(n)
    chunks = -(-(hi - lo) // chunk)
    bounds = [(lo + a, lo + b) for a, b in _split(hi - lo, _pieces(n * (hi - lo), chunks), chunk)]
    results = _parallel(bounds, columns_part)
    return np.sum([r[0] for r in results], axis=0), np.sum([r[1] for r in results], axis=0)


def combine_and_dots(updates: np.ndarray, coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """u = coefficientsᵀ·updates and updates·u in one fused read of the data.

    Rows with coefficient 0 never enter u (a rejected NaN row cannot spoil it through 0·NaN)
    but still get their dot product, so filtered senders can be scored.
    """
    updates = as_float(updates)
    aggregate = np.empty(updates.shape[1], dtype=updates.dtype)
    dots, _ = _fused(updates, coefficients, aggregate, (0, updates.shape[1]))
    return aggregate, dots


def combine_rows(updates: np.ndarray, coefficients: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Σ_{j∈rows} c_j Δ_j, reading only those rows (column ranges on parallel threads)."""
    updates = as_float(updates)
    d = updates.shape[1]
    total = np.empty(d, dtype=updates.dtype)
    selected = np.asarray(rows, dtype=np.int64)
    weights = np.zeros(updates.shape[0], dtype=updates.dtype)
    weights[selected] = np.asarray(coefficients)[selected]
    selected = selected[weights[selected] != 0]
    chunk = _fused_chunk(max(1, selected.size), updates.dtype.itemsize)

    def columns_part(start: int, stop: int) -> None:
        _kernels().weighted_sum_range(updates, weights, selected, start, stop, chunk, total)

    _over_columns(d, selected.size * d * 4, chunk, columns_part)
    return total


def coordinate_median(updates: np.ndarray, rows: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Median over the rows `rows` (each multiplied by its `scale`) of every coordinate, equal to
    `np.median(updates[rows] * scale[:, None], axis=0)` but without that m × d copy: each
    column's m values are gathered and selected in place (column ranges on parallel threads).
    NaN for every coordinate when there are no rows, as numpy gives."""
    updates = as_float(updates)
    d = updates.shape[1]
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty(d, dtype=updates.dtype)
    if rows.size == 0:
        out[:] = np.nan
        return out
    factors = np.asarray(scale).astype(updates.dtype)  # effective rows are scaled in the data's dtype

    def columns_part(start: int, stop: int) -> None:
        kernels = _kernels()
        block = np.empty((kernels.MEDIAN_BLOCK, rows.size), dtype=updates.dtype)
        out[start:stop] = kernels.median_range(updates, rows, factors, start, stop, block)

    _over_columns(d, rows.size * d, 4096, columns_part)
    return out


def coordinate_trimmed_mean(updates: np.ndarray, rows: np.ndarray, scale: np.ndarray, cut: int) -> np.ndarray:
    """Per-coordinate mean (float64 sums) of the rows `rows`, each multiplied by its `scale`, after dropping the
    `cut` lowest and `cut` highest values, as `np.sort(updates[rows] * scale[:, None], axis=0)[cut:m - cut]
    .mean(axis=0, dtype=np.float64)` gives it (to float32 rounding), without that m × d copy. Column blocks of
    TRIM_BLOCK are copied transposed, so each column's values are contiguous, and sorted in place: numpy's
    vectorised sort along the last axis took a quarter of the time of the same sort along axis 0, and a
    compiled per-column selection 3.5× as long as the whole-copy sort."""
    updates = as_float(updates)
    rows = np.asarray(rows, dtype=np.int64)
    if not 0 <= 2 * cut < rows.size:
        raise ValueError(f"cannot trim {cut} values at each end of {rows.size}")
    d = updates.shape[1]
    factors = np.asarray(scale).astype(updates.dtype)[:, None]  # effective rows are scaled in the data's dtype
    out = np.empty(d, dtype=updates.dtype)

    def columns_part(start: int, stop: int) -> None:
        for s in range(start, stop, TRIM_BLOCK):
            block = (updates[rows, s : min(s + TRIM_BLOCK, stop)] * factors).T.copy()
            block.sort(axis=1)
            out[s : s + block.shape[0]] = block[:, cut : rows.size - cut].mean(axis=1, dtype=np.float64)

    _over_columns(d, rows.size * d, TRIM_BLOCK, columns_part)
    return out


def gram_matrix(updates: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Gram matrix of the rows `index` in float64, without an n × d copy of the rows.

    Column blocks of the selected rows are multiplied (float32 products, float64 sums), so
    only a k × block slice is ever copied.
    """
    index = np.asarray(index, dtype=np.int64)
    d = updates.shape[1]
    dtype = _float_dtype(updates)
    gram = np.zeros((index.size, index.size), dtype=np.float64)
    contiguous = index.size > 0 and np.array_equal(index, np.arange(index[0], index[0] + index.size))
    for start in range(0, d, GRAM_BLOCK_COLUMNS):
        stop = min(start + GRAM_BLOCK_COLUMNS, d)
        block = updates[index[0] : index[0] + index.size, start:stop] if contiguous else updates[index, start:stop]
        if block.dtype != dtype:
            block = block.astype(dtype)
        gram += np.matmul(block, block.T)
    return gram


def squared_norm_from_dots(coefficients: np.ndarray, dots: np.ndarray) -> float:
    """‖u‖² = Σ_i c_i·(Δ_i·u) over the contributing rows (a rejected NaN row has c_i = 0 and a
    NaN dot, and 0·NaN would spoil the sum)."""
    coefficients = np.asarray(coefficients, dtype=np.float64)
    contributing = coefficients != 0
    return float(coefficients[contributing] @ dots[contributing])


def combine_and_dots_speculating(
    updates: np.ndarray, coefficients: np.ndarray, drop_below: float
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """`combine_and_dots`, plus the same for the coefficients without the rows predicted to
    have cos(Δ_i, u) < drop_below, from the same single read of the data.

    A probe (the fused pass over the first ~1/32 of the columns) gives partial cosines; the
    rows with a nonzero coefficient below the threshold there are the prediction P. The rest
    of the pass also forms v = Σ_{j∈P} c_j Δ_j and Δ_i·v per chunk, and the probe's columns
    are read once more for them. Returns ((u, dots), (coefficients with P zeroed, u − v,
    dots − Δ·v)), the second part None when nothing (or more than half the rows) is predicted
    to drop.
    """
    updates = as_float(updates)
    n, d = updates.shape
    aggregate = np.empty(d, dtype=updates.dtype)
    chunk = _fused_chunk(n, updates.dtype.itemsize)
    probe = max(chunk, (d // PROBE_FRACTION) // chunk * chunk)
    if probe >= d:
        return combine_and_dots(updates, coefficients), None
    probe_dots, _ = _fused(updates, coefficients, aggregate, (0, probe))
    probe_norms = np.sqrt(row_dots(updates, columns=(0, probe)))
    probe_aggregate_norm = float(np.sqrt(max(squared_norm_from_dots(coefficients, probe_dots), 0.0)))
    denominator = probe_norms * probe_aggregate_norm
    with np.errstate(divide="ignore", invalid="ignore"):
        probe_cosines = np.where(denominator > 0, probe_dots / np.where(denominator > 0, denominator, 1.0), 0.0)
    predicted = np.flatnonzero((np.asarray(coefficients) != 0.0) & (probe_cosines < drop_below)).astype(np.int64)
    if predicted.size == 0 or predicted.size > n // 2:
        rest_dots, _ = _fused(updates, coefficients, aggregate, (probe, d))
        return (aggregate, probe_dots + rest_dots), None
    without = np.empty(d, dtype=updates.dtype)
    # the probe's columns: u is known there, only v, u − v and Δ_i·v are formed
    _, probe_removed_dots = _fused(updates, coefficients, aggregate, (0, probe), predicted, without, known=True)
    rest_dots, rest_removed_dots = _fused(updates, coefficients, aggregate, (probe, d), predicted, without)
    remaining = np.asarray(coefficients, dtype=np.float64).copy()
    remaining[predicted] = 0.0
    with np.errstate(invalid="ignore"):  # a rejected non-finite row's own dots are NaN or ±inf
        dots = probe_dots + rest_dots
        return (aggregate, dots), (remaining, without, dots - (probe_removed_dots + rest_removed_dots))
