"""Compiled (numba) loops for the passes over the n × d update matrix.

A round is bound by memory traffic, and numpy alone leaves two costs on the table:
- a fused pass (u = Σ c_i Δ_i over a column chunk, then Δ_i·u for every row on the same chunk)
  made of BLAS calls needs chunks of ≥ 4096 columns to amortise the calls, and 100 such rows
  (1.6 MB) overflow the 1 MB L2, so the second sweep comes from L3;
- row norms as one BLAS dot per row chunk read one row at a time and pay a Python call each.

Here a chunk of about a thousand columns (1280 at n = 100) stays in L2 between the two sweeps,
and every sweep is register-blocked over four rows: u's slice is loaded once for four rows'
dot products, and four rows are folded into u per load and store of it; norms read four rows
side by side. Measured on the 2-core EPYC (n = 100, d = 10^6 float32, each pass against a bare
`weights @ updates` of the same arrays): the fused pass 2.0-2.2× → 1.3-1.6×, row norms
1.2-1.4× → 1.0-1.05×, and a whole round 3.1-3.9× → 2.4-2.6× (`benchmarks/aggregate_speed.py`).
Tried on top: eight-row blocking changed nothing measurable (the sweeps run at the L2's
bandwidth, ≈ 110 GB/s per core in an in-cache test), and software prefetching made the fused
pass slower (1.41× → 1.46-1.72×). `pair_dots_range` (the consistency rule: each row against its
sender's previous one) reads both rows in one sweep at about 2× a bare weighted sum of one matrix, the
floor for two matrices; a float64 copy of both rows per cosine had taken 7.2×. The coordinate median
(`median_range`) selects each column's values in place instead of numpy's median of a copy of the rows.

Arithmetic: float32 data are multiplied and summed in float32 within a chunk (the compiler may
reorder those sums into vector lanes: `reassoc`), chunk sums are added in float64. NaN and ±inf
propagate (no `nnan`/`ninf` flags), so a non-finite row still gives a non-finite norm or dot.
Rows outside `rows` never enter a sum, so a rejected NaN row cannot spoil u through 0·NaN.
Every function works on a range, of columns [lo, hi) (fused pass, sums, median) or of rows
(norms), so that the caller's threads split the work.
"""

from __future__ import annotations

import numba
import numpy as np

_FLAGS = {"reassoc", "contract"}
_JIT = {"nogil": True, "fastmath": _FLAGS, "cache": True}


@numba.njit(inline="always", **_JIT)
def _dot(x: np.ndarray, y: np.ndarray) -> float:
    total = np.float32(0.0)  # widened to float64 by type unification when the data are float64
    for t in range(x.shape[0]):
        total += x[t] * y[t]
    return total


@numba.njit(inline="always", **_JIT)
def _four_dots(
    x0: np.ndarray,
    x1: np.ndarray,
    x2: np.ndarray,
    x3: np.ndarray,
    y0: np.ndarray,
    y1: np.ndarray,
    y2: np.ndarray,
    y3: np.ndarray,
) -> tuple[float, float, float, float]:
    """(x0·y0, x1·y1, x2·y2, x3·y3) in one sweep: four streams at once (y_k = x_k for norms, one
    shared vector for dots, which is then loaded once per four rows)."""
    a0, a1, a2, a3 = np.float32(0.0), np.float32(0.0), np.float32(0.0), np.float32(0.0)
    for t in range(x0.shape[0]):
        a0 += x0[t] * y0[t]
        a1 += x1[t] * y1[t]
        a2 += x2[t] * y2[t]
        a3 += x3[t] * y3[t]
    return a0, a1, a2, a3


@numba.njit(**_JIT)
def row_dots_range(
    updates: np.ndarray,
    vector: np.ndarray,
    use_vector: bool,
    first: int,
    last: int,
    lo: int,
    hi: int,
    chunk: int,
    out: np.ndarray,
) -> None:
    """out[i - first] = Σ_{j∈[lo,hi)} updates[i, j]·v[j] for rows [first, last), v = vector or
    the row itself; four rows read front to back side by side (measured: 1.0-1.05× a bare
    weighted sum against 1.2 for one row at a time), chunk sums added in float64."""
    i = first
    while i + 4 <= last:
        t0 = t1 = t2 = t3 = 0.0
        for s in range(lo, hi, chunk):
            e = min(s + chunk, hi)
            x0, x1, x2, x3 = updates[i, s:e], updates[i + 1, s:e], updates[i + 2, s:e], updates[i + 3, s:e]
            if use_vector:
                v = vector[s:e]
                a0, a1, a2, a3 = _four_dots(x0, x1, x2, x3, v, v, v, v)
            else:
                a0, a1, a2, a3 = _four_dots(x0, x1, x2, x3, x0, x1, x2, x3)
            t0 += a0
            t1 += a1
            t2 += a2
            t3 += a3
        out[i - first], out[i + 1 - first], out[i + 2 - first], out[i + 3 - first] = t0, t1, t2, t3
        i += 4
    while i < last:
        row = updates[i]
        total = 0.0
        for s in range(lo, hi, chunk):
            e = min(s + chunk, hi)
            total += _dot(row[s:e], vector[s:e] if use_vector else row[s:e])
        out[i - first] = total
        i += 1


@numba.njit(inline="always", **_JIT)
def _dot_and_square(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(x·y, y·y) in one sweep."""
    a = np.float32(0.0)  # widened to float64 by type unification when the data are float64
    b = np.float32(0.0)
    for t in range(x.shape[0]):
        a += x[t] * y[t]
        b += y[t] * y[t]
    return a, b


@numba.njit(**_JIT)
def pair_dots_range(x: np.ndarray, y: np.ndarray, lo: int, hi: int, chunk: int) -> tuple[float, float]:
    """(x·y, y·y) over columns [lo, hi) in one sweep of both rows (a row against its sender's previous one,
    whose norm nothing else computes), chunk sums added in float64."""
    xy = 0.0
    yy = 0.0
    for s in range(lo, hi, chunk):
        e = min(s + chunk, hi)
        a, b = _dot_and_square(x[s:e], y[s:e])
        xy += a
        yy += b
    return xy, yy


@numba.njit(inline="always", **_JIT)
def _weighted_sum(
    updates: np.ndarray, coefficients: np.ndarray, rows: np.ndarray, s: int, e: int, out: np.ndarray
) -> None:
    """out = Σ_{i∈rows} c_i·updates[i, s:e], four rows per load and store of out."""
    out[:] = 0.0
    m = rows.shape[0]
    j = 0
    while j + 4 <= m:
        r0, r1, r2, r3 = rows[j], rows[j + 1], rows[j + 2], rows[j + 3]
        c0, c1, c2, c3 = coefficients[r0], coefficients[r1], coefficients[r2], coefficients[r3]
        x0, x1, x2, x3 = updates[r0, s:e], updates[r1, s:e], updates[r2, s:e], updates[r3, s:e]
        for t in range(e - s):
            out[t] += c0 * x0[t] + c1 * x1[t] + c2 * x2[t] + c3 * x3[t]
        j += 4
    while j < m:
        r0 = rows[j]
        c0 = coefficients[r0]
        x0 = updates[r0, s:e]
        for t in range(e - s):
            out[t] += c0 * x0[t]
        j += 1


@numba.njit(inline="always", **_JIT)
def _add_dots(
    updates: np.ndarray,
    s: int,
    e: int,
    u: np.ndarray,
    dots: np.ndarray,
    v: np.ndarray,
    v_dots: np.ndarray,
    with_v: bool,
) -> None:
    """dots[i] += updates[i, s:e]·u (and v_dots[i] += updates[i, s:e]·v when `with_v`) for every
    row, four rows per load of u and v: a second vector costs no second read of the rows."""
    n = updates.shape[0]
    i = 0
    while i + 4 <= n:
        x0, x1, x2, x3 = updates[i, s:e], updates[i + 1, s:e], updates[i + 2, s:e], updates[i + 3, s:e]
        if with_v:
            a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = np.float32(0.0)
            for t in range(e - s):
                ut, vt = u[t], v[t]
                a0 += x0[t] * ut
                a1 += x1[t] * ut
                a2 += x2[t] * ut
                a3 += x3[t] * ut
                b0 += x0[t] * vt
                b1 += x1[t] * vt
                b2 += x2[t] * vt
                b3 += x3[t] * vt
            v_dots[i], v_dots[i + 1], v_dots[i + 2], v_dots[i + 3] = (
                v_dots[i] + b0,
                v_dots[i + 1] + b1,
                v_dots[i + 2] + b2,
                v_dots[i + 3] + b3,
            )
        else:
            a0, a1, a2, a3 = _four_dots(x0, x1, x2, x3, u, u, u, u)
        dots[i], dots[i + 1], dots[i + 2], dots[i + 3] = (
            dots[i] + a0,
            dots[i + 1] + a1,
            dots[i + 2] + a2,
            dots[i + 3] + a3,
        )
        i += 4
    while i < n:
        x = updates[i, s:e]
        dots[i] += _dot(x, u)
        if with_v:
            v_dots[i] += _dot(x, v)
        i += 1


@numba.njit(**_JIT)
def fused_range(
    updates: np.ndarray,
    coefficients: np.ndarray,
    rows: np.ndarray,
    removed: np.ndarray,
    lo: int,
    hi: int,
    chunk: int,
    aggregate: np.ndarray,
    known: bool,
    without: np.ndarray,
    scratch: np.ndarray,
    dots: np.ndarray,
    removed_dots: np.ndarray,
) -> None:
    """Over columns [lo, hi) in chunks that stay in cache between sweeps, with u = Σ_{i∈rows ∪
    removed} c_i Δ_i and v = Σ_{j∈removed} c_j Δ_j (`rows` and `removed` disjoint):
    - aggregate[s:e] = u[s:e], dots_i += Δ_i[s:e]·u[s:e];
    - if `removed` is not empty: without[s:e] = u[s:e] − v[s:e], removed_dots_i += Δ_i[s:e]·v[s:e]
      (v lives in `scratch`; both dot products come from one sweep over the rows);
    - when `known`, aggregate already holds u (an earlier call formed it): only v, `without` and
      removed_dots are computed.
    """
    with_v = removed.shape[0] > 0
    for s in range(lo, hi, chunk):
        e = min(s + chunk, hi)
        part = aggregate[s:e]
        v = scratch[: e - s]
        if with_v:
            _weighted_sum(updates, coefficients, removed, s, e, v)
        if known:
            if with_v:
                for t in range(e - s):
                    without[s + t] = part[t] - v[t]
                _add_dots(updates, s, e, v, removed_dots, v, removed_dots, False)
            continue
        if with_v:
            kept = without[s:e]
            _weighted_sum(updates, coefficients, rows, s, e, kept)
            for t in range(e - s):
                part[t] = kept[t] + v[t]
        else:
            _weighted_sum(updates, coefficients, rows, s, e, part)
        _add_dots(updates, s, e, part, dots, v, removed_dots, with_v)


@numba.njit(**_JIT)
def weighted_sum_range(
    updates: np.ndarray, coefficients: np.ndarray, rows: np.ndarray, lo: int, hi: int, chunk: int, out: np.ndarray
) -> None:
    """out[s:e] = Σ_{i∈rows} c_i Δ_i[s:e] over columns [lo, hi), chunk by chunk."""
    for s in range(lo, hi, chunk):
        e = min(s + chunk, hi)
        _weighted_sum(updates, coefficients, rows, s, e, out[s:e])


MEDIAN_BLOCK = 64  # columns gathered at once: one 256-byte segment per row (float32)


@numba.njit(inline="always", **_JIT)
def _select(values: np.ndarray, count: int, k: int) -> float:
    """The k-th smallest of values[:count] (0-based), reordering them so that every value before
    position k is ≤ it (Hoare's selection, middle-of-range pivot)."""
    lo, hi = 0, count - 1
    while lo < hi:
        pivot = values[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while values[i] < pivot:
                i += 1
            while values[j] > pivot:
                j -= 1
            if i <= j:
                values[i], values[j] = values[j], values[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return values[k]


@numba.njit(**_JIT)
def median_range(
    updates: np.ndarray, rows: np.ndarray, scale: np.ndarray, lo: int, hi: int, block: np.ndarray
) -> np.ndarray:
    """Median over i∈rows of scale_i·updates[i, j] for columns [lo, hi), as numpy's median gives it:
    the middle value, or the mean of the two middle ones in the data's dtype (a NaN gives NaN).

    MEDIAN_BLOCK columns at a time are gathered row segment by row segment into `block`
    (MEDIAN_BLOCK × m, one contiguous row per column), then each column is selected in place.
    At n = 100, d = 10^6 float32 this takes 0.7 s on 2 threads against 1.2-1.3 s for numpy's median
    of the copied rows (a 400 MB copy); the selection's data-dependent branches dominate, not the
    gather (gathering column by column measured the same)."""
    m = rows.shape[0]
    upper = m // 2
    out = np.empty(hi - lo, dtype=block.dtype)
    for s in range(lo, hi, MEDIAN_BLOCK):
        width = min(MEDIAN_BLOCK, hi - s)
        for k in range(m):
            segment = updates[rows[k], s : s + width]
            factor = scale[k]
            for b in range(width):
                block[b, k] = segment[b] * factor
        for b in range(width):
            values = block[b]
            missing = False
            for k in range(m):
                missing = missing or values[k] != values[k]
            if missing:
                out[s - lo + b] = np.nan
                continue
            top = _select(values, m, upper)
            if m % 2 == 1:
                out[s - lo + b] = top
            else:
                bottom = values[0]  # the lower middle: the largest value the selection left below
                for k in range(1, upper):
                    bottom = max(bottom, values[k])
                out[s - lo + b] = (bottom + top) / 2
    return out
