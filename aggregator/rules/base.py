"""The common shape of every robust aggregation rule.

Rules never copy or modify the n × d update matrix: they return a kept mask and a per-row
scale (clipping multiplies a row by a factor ≤ 1), which later steps fold into the
aggregation weights. At n = 100, d = 10^6 a copy is 400 MB and a full memory pass, so
keeping the raw rows untouched is what makes a round cost a few passes over the data.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

# Column block for fused passes: 100 rows × 4096 float32 ≈ 1.6 MB per thread, which stays in
# cache between the two matrix-vector products of `combine_and_dots` (re-measured on a 2-core
# EPYC once the per-block copies were gone: 2048-4096 beat 8192 and 16384).
FUSED_BLOCK_COLUMNS = 4096
# Row passes (norms, dots with one vector) read each row front to back, one BLAS dot per chunk
# of this many entries, the float32 partial sums added up in float64 (max relative error
# 6e-7 on the benchmark's norms; 1.3e-7 at 65536, which costs ~10% more calls and time;
# 3.5e-6 for one dot per 10^6-entry row).
NORM_BLOCK_COLUMNS = 262144
# Column block of `gram_matrix`: a k × block slice of the selected rows is copied at a time.
GRAM_BLOCK_COLUMNS = 8192
# The speculative fused pass predicts which rows a cosine filter drops from the first
# 1/PROBE_FRACTION of the columns (≈ 31k coordinates at d = 10^6).
PROBE_FRACTION = 32
# Below this many entries threads cost more than they save.
PARALLEL_MIN_ENTRIES = 1 << 22
PARALLEL_WORKERS = 2
# Work is cut into this many parts per worker thread and handed out as threads free up, so a
# thread that the OS preempts (the machine is shared) delays the pass by one part, not half.
PARTS_PER_WORKER = 4


@dataclass(frozen=True)
class RoundContext:
    """What a rule may know about the round besides the updates themselves."""

    senders: tuple[str, ...]
    data_sizes: np.ndarray | None = None
    reference_weights: np.ndarray | None = None
    expected_attackers: int | None = None
    seed: int = 0

    def weights_for_reference(self, n: int) -> np.ndarray:
        """Non-negative weights for a reference aggregate: reputations, else data sizes, else uniform."""
        for candidate in (self.reference_weights, self.data_sizes):
            if candidate is not None:
                weights = np.asarray(candidate, dtype=np.float64)
                if weights.shape != (n,):
                    raise ValueError(f"context weights have shape {weights.shape}; expected ({n},)")
                return np.clip(weights, 0.0, None)
        return np.ones(n, dtype=np.float64)


@dataclass
class _SharedCache:
    raw_sq_norms: np.ndarray | None = None
    combinations: dict[bytes, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    gram: dict[bytes, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class UpdateBatch:
    """n raw updates (rows, never modified) with the kept mask and per-row scale applied lazily.

    The effective update of row i is `scale[i] * updates[i]` when `kept[i]`; rejected or
    filtered rows stay in the matrix so reputations can still score them.
    """

    updates: np.ndarray
    kept: np.ndarray
    scale: np.ndarray
    cache: _SharedCache = field(default_factory=_SharedCache, repr=False, compare=False)

    @classmethod
    def from_updates(cls, updates: np.ndarray, kept: np.ndarray | None = None) -> UpdateBatch:
        if updates.ndim != 2:
            raise ValueError(f"updates must be an n × d matrix, got shape {updates.shape}")
        n = updates.shape[0]
        kept_mask = np.ones(n, dtype=bool) if kept is None else np.asarray(kept, dtype=bool).copy()
        return cls(updates=updates, kept=kept_mask, scale=np.ones(n, dtype=np.float64))

    @property
    def n(self) -> int:
        return int(self.updates.shape[0])

    def derive(self, *, kept: np.ndarray | None = None, scale: np.ndarray | None = None) -> UpdateBatch:
        """A batch over the same raw rows (sharing cached norms and products) with a new mask/scale."""
        return replace(
            self,
            kept=self.kept if kept is None else np.asarray(kept, dtype=bool),
            scale=self.scale if scale is None else np.asarray(scale, dtype=np.float64),
        )

    def raw_norms(self) -> np.ndarray:
        """Euclidean norm of every raw row (float64); non-finite rows give inf or nan."""
        if self.cache.raw_sq_norms is None:
            self.cache.raw_sq_norms = row_squared_norms(self.updates)
        return np.sqrt(self.cache.raw_sq_norms)

    def effective_norms(self) -> np.ndarray:
        return self.scale * self.raw_norms()

    def effective_coefficients(self, weights: np.ndarray) -> np.ndarray:
        """Per-row multipliers of the raw rows for Σ_kept weights_i · scale_i · updates_i."""
        return np.where(self.kept, np.asarray(weights, dtype=np.float64) * self.scale, 0.0)

    def combine_and_dots(
        self, weights: np.ndarray, *, likely_drop_below: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """u = Σ_kept w_i s_i Δ_i and the dot product of every raw row with u, in one fused pass.

        `likely_drop_below` (a cosine threshold) says that the caller will next ask for the
        same combination without the rows whose cosine to u falls below it (a cosine filter
        followed by a reputation that aggregates with the same weights). The fused pass then
        also computes that combination and its dots on the cache-resident blocks, for the rows
        a short probe predicts, so the later request costs no pass over the data. A wrong
        prediction costs only the extra in-cache work: the request is then served as before.
        """
        coefficients = self.effective_coefficients(weights)
        key = coefficients.tobytes()
        cached = self.cache.combinations.get(key)
        if cached is None:
            cached = self._downdate(coefficients)
        if cached is None:
            if likely_drop_below is None:
                cached = combine_and_dots(self.updates, coefficients)
            else:
                cached, speculative = combine_and_dots_speculating(self.updates, coefficients, likely_drop_below)
                if speculative is not None:
                    without, aggregate, dots = speculative
                    self.cache.combinations.setdefault(without.tobytes(), (aggregate, dots))
        self.cache.combinations[key] = cached
        return cached

    def _downdate(self, coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Reuse a cached combination when the new one only zeroes some of its rows.

        After a filter drops the rows D, v = Σ_{j∈D} c_j Δ_j (reads only |D| rows),
        u' = u − v and Δ_i·u' = Δ_i·u − Δ_i·v: one matrix-vector product over the data
        instead of a fresh fused pass (which costs two).
        """
        for old_key, (aggregate, dots) in self.cache.combinations.items():
            old = np.frombuffer(old_key, dtype=np.float64)
            if old.shape != coefficients.shape:
                continue
            changed = old != coefficients
            if not np.any(changed) or np.any(coefficients[changed] != 0.0):
                continue
            dropped = np.flatnonzero(changed)
            if dropped.size > self.n // 2:
                continue
            removed = _combine_rows(self.updates, old, dropped, aggregate.dtype)
            new_aggregate = aggregate - removed
            # Δ_i·v for every row: one row-sequential pass over the data (the only full read here)
            new_dots = dots - row_dots(self.updates, removed)
            return new_aggregate, new_dots
        return None

    def cosines_to(
        self, weights: np.ndarray, *, likely_drop_below: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(u, cos(Δ_i, u) for every raw row); a zero row or a zero u has cosine 0."""
        aggregate, dots = self.combine_and_dots(weights, likely_drop_below=likely_drop_below)
        # ‖u‖² = Σ_i c_i·(Δ_i·u): free from the dots already computed, no extra pass over u
        squared = _squared_norm_from_dots(self.effective_coefficients(weights), dots)
        aggregate_norm = float(np.sqrt(max(squared, 0.0)))
        denominator = self.raw_norms() * aggregate_norm
        with np.errstate(divide="ignore", invalid="ignore"):
            cosines = np.where(denominator > 0, dots / np.where(denominator > 0, denominator, 1.0), 0.0)
        return aggregate, np.clip(cosines, -1.0, 1.0)

    def kept_gram(self) -> np.ndarray:
        """Gram matrix of the effective kept rows (float64), for pairwise distances."""
        index = np.flatnonzero(self.kept)
        key = index.tobytes()
        raw = self.cache.gram.get(key)
        if raw is None:
            raw = _sub_gram(self.cache.gram, index)
        if raw is None:
            raw = gram_matrix(self.updates, index)
        self.cache.gram[key] = raw
        s = self.scale[index]
        return raw * np.outer(s, s)

    def effective_rows(self) -> np.ndarray:
        """Materialised effective kept rows (a copy); only coordinate-wise rules need it."""
        index = np.flatnonzero(self.kept)
        rows = self.updates[index]
        return (rows * self.scale[index, None].astype(rows.dtype)) if np.any(self.scale[index] != 1.0) else rows


@dataclass(frozen=True)
class RuleResult:
    """Outcome of one rule: who stays, the new per-row scale, and an aggregate if the rule makes one."""

    kept_mask: np.ndarray
    scale: np.ndarray
    aggregate: np.ndarray | None = None
    notes: dict[str, Any] = field(default_factory=dict)
    # rows a rule found to be copies or boosted: a reputation scores them no better than a
    # sender of nothing, min(similarity to the aggregate, the missing score)
    capped: np.ndarray | None = None


# How a reputation scores the rows a rule drops: "cosine" against the aggregate, like any
# filtered row, or "capped", no better than a sender of nothing (RuleResult.capped)
DROPPED_SCORES = ("cosine", "capped")


def check_dropped_score(rule: str, option: str, value: str) -> None:
    """Refuse a dropped-row score other than DROPPED_SCORES, naming the rule's option."""
    if value not in DROPPED_SCORES:
        raise ValueError(f"{rule} {option} must be one of {', '.join(DROPPED_SCORES)}, got {value!r}")


def capped_rows(dropped: np.ndarray, score: str) -> np.ndarray | None:
    """The RuleResult.capped flags for a rule's dropped rows under its dropped-row score."""
    return dropped if score == "capped" else None


def filter_result(batch: UpdateBatch, kept: np.ndarray, score: str, **notes: Any) -> RuleResult:
    """A filter's RuleResult: the rows it kept, scales unchanged, its dropped rows counted and,
    under a "capped" dropped-row score, flagged for the reputation."""
    dropped = batch.kept & ~kept
    return RuleResult(
        kept_mask=kept,
        scale=batch.scale.copy(),
        capped=capped_rows(dropped, score),
        notes={"dropped": int(np.count_nonzero(dropped)), **notes},
    )


@runtime_checkable
class Rule(Protocol):
    """A robust aggregation step; `name` is how a task spec refers to it."""

    name: str

    def apply(self, batch: UpdateBatch, ctx: RoundContext) -> RuleResult: ...


def _workers() -> int:
    return max(1, min(PARALLEL_WORKERS, os.cpu_count() or 1))


def _parallel(parts: list[tuple[int, int]], work: Callable[[int, int], Any]) -> list[Any]:
    """Run `work` over disjoint slices on a small thread pool with BLAS held to one thread each.

    numpy releases the GIL inside einsum and BLAS calls, so two threads on two cores read
    memory twice as fast as one; capping BLAS avoids 2 × 2 oversubscription.
    """
    with _blas_single_thread():  # also for one part: a threaded BLAS call leaves workers spinning
        if len(parts) == 1:
            return [work(*parts[0])]
        return list(_pool().map(lambda bounds: work(*bounds), parts))


@functools.cache
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="fedmarket-agg")


@functools.cache
def _controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _blas_single_thread() -> Any:
    try:
        return _controller().limit(limits=1, user_api="blas")
    except Exception:  # threadpoolctl missing or unable to inspect BLAS: run with its defaults
        return contextlib.nullcontext()


def _split(total: int, pieces: int, align: int = 1) -> list[tuple[int, int]]:
    bounds = np.linspace(0, total, pieces + 1).astype(np.int64)
    bounds = (bounds // align) * align
    bounds[-1] = total
    return [(int(a), int(b)) for a, b in itertools.pairwise(bounds) if b > a]


def _float_dtype(updates: np.ndarray) -> np.dtype:
    return updates.dtype if updates.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def row_dots(updates: np.ndarray, vector: np.ndarray | None = None) -> np.ndarray:
    """Δ_i·vector (or Δ_i·Δ_i when `vector` is None) for every row, in float64.

    Each row is read front to back (one stream per thread, which the prefetcher follows; a
    column-blocked walk over 100 rows at once is markedly slower), one BLAS dot per chunk of
    NORM_BLOCK_COLUMNS entries whose float32 partial sums are added in float64. Row ranges run
    on parallel threads. NaN and ±inf propagate into the result, so a non-finite row gives a
    non-finite value.
    """
    n, d = updates.shape
    dtype = _float_dtype(updates)
    if vector is not None:
        vector = np.ascontiguousarray(vector, dtype=dtype)
        if vector.shape != (d,):
            raise ValueError(f"vector has shape {vector.shape}; expected ({d},)")
    chunks = [(start, min(start + NORM_BLOCK_COLUMNS, d)) for start in range(0, d, NORM_BLOCK_COLUMNS)]

    def rows_part(lo: int, hi: int) -> np.ndarray:
        out = np.empty(hi - lo, dtype=np.float64)
        # non-finite rows are expected input (validation reads them off the result); the error
        # state is per thread, so it is set here rather than by the caller
        with np.errstate(over="ignore", invalid="ignore"):
            for i in range(lo, hi):
                row = updates[i]
                if row.dtype != dtype:
                    row = row.astype(dtype)
                other = row if vector is None else vector
                total = 0.0
                for start, stop in chunks:
                    total += float(np.dot(row[start:stop], other[start:stop]))
                out[i - lo] = total
        return out

    pieces = min(_workers() * PARTS_PER_WORKER, n) if n * d > PARALLEL_MIN_ENTRIES else 1
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    return np.concatenate(_parallel(_split(n, pieces), rows_part))


def row_squared_norms(updates: np.ndarray) -> np.ndarray:
    """Σ_j x_ij² per row in float64 (one row-sequential pass; see `row_dots`)."""
    return row_dots(updates)


def _combine_rows(updates: np.ndarray, coefficients: np.ndarray, rows: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Σ_{j∈rows} c_j Δ_j without copying the rows: one matrix-vector product per run of adjacent
    rows, column ranges on parallel threads."""
    d = updates.shape[1]
    total = np.empty(d, dtype=dtype)
    runs = _runs(rows)
    weights = np.asarray(coefficients).astype(dtype)

    def columns_part(lo: int, hi: int) -> None:
        _sum_runs(updates[:, lo:hi], weights, runs, total[lo:hi])

    pieces = min(_workers(), max(1, d // FUSED_BLOCK_COLUMNS)) if len(rows) * d > PARALLEL_MIN_ENTRIES // 4 else 1
    _parallel(_split(d, pieces), columns_part)
    return total


def _sub_gram(cached: dict[bytes, np.ndarray], index: np.ndarray) -> np.ndarray | None:
    """The Gram matrix of rows `index` cut from a cached one over a superset of them, if any
    (a rule that drops rows after another one computed the Gram matrix costs no pass over the data)."""
    for key, gram in cached.items():
        known = np.frombuffer(key, dtype=index.dtype)
        positions = np.searchsorted(known, index)
        if positions.size and positions[-1] < known.size and np.array_equal(known[positions], index):
            return gram[np.ix_(positions, positions)]
    return None


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


def combine_and_dots(updates: np.ndarray, coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """u = coefficientsᵀ·updates and updates·u, blocked over columns so each block is read once.

    Rows with coefficient 0 still get their dot product, so filtered senders can be scored.
    Column ranges run on parallel threads; each thread's blocks stay in cache between the two
    matrix-vector products. `np.matmul` (not `np.dot`) is used on the strided column blocks:
    `np.dot` copies a non-contiguous block before calling BLAS, doubling the memory traffic.
    """
    d = updates.shape[1]
    dtype = _float_dtype(updates)
    weights = coefficients.astype(dtype)
    aggregate = np.empty(d, dtype=dtype)
    dots, _ = _fused_columns(updates, weights, aggregate, 0, d)
    if _poisoned(coefficients, dots):
        dots, _ = _fused_columns(updates, weights, aggregate, 0, d, runs=_runs(np.flatnonzero(coefficients)))
    return aggregate, dots


def _squared_norm_from_dots(coefficients: np.ndarray, dots: np.ndarray) -> float:
    """‖u‖² = Σ_i c_i·(Δ_i·u) over the contributing rows (a rejected NaN row has c_i = 0 and a
    NaN dot, and 0·NaN would spoil the sum)."""
    coefficients = np.asarray(coefficients, dtype=np.float64)
    contributing = coefficients != 0
    return float(coefficients[contributing] @ dots[contributing])


def _sum_runs(block: np.ndarray, weights: np.ndarray, runs: list[tuple[int, int]], out: np.ndarray) -> None:
    """out = Σ_{[first, last) ∈ runs} weights[first:last]·block[first:last], one matrix-vector
    product per run of adjacent rows (no copy of the rows; 0 when there are no runs)."""
    if not runs:
        out[:] = 0
        return
    scratch = np.empty_like(out) if len(runs) > 1 else out
    for number, (first, last) in enumerate(runs):
        rows = block[first:last]
        if rows.dtype != out.dtype:
            rows = rows.astype(out.dtype)
        np.matmul(weights[first:last], rows, out=out if number == 0 else scratch)
        if number:
            out += scratch


def _runs(rows: np.ndarray) -> list[tuple[int, int]]:
    """Sorted row indices as maximal [first, last) ranges of adjacent rows."""
    rows = np.asarray(rows, dtype=np.int64)
    return [
        (int(run[0]), int(run[-1]) + 1) for run in np.split(rows, np.flatnonzero(np.diff(rows) != 1) + 1) if run.size
    ]


def _poisoned(coefficients: np.ndarray, dots: np.ndarray) -> bool:
    """Did a non-finite row with coefficient 0 (rejected by validation, still in the matrix) turn
    u into NaN through 0·NaN? Then the dots of the rows that do contribute are not finite."""
    contributing = np.asarray(coefficients) != 0
    return bool(np.any(~contributing)) and not bool(np.all(np.isfinite(dots[contributing])))


@dataclass(frozen=True)
class _Removal:
    """Rows predicted to be dropped next, their coefficients, and where u − v goes."""

    rows: np.ndarray
    weights: np.ndarray
    without: np.ndarray

    def fold_block(
        self, block: np.ndarray, part: np.ndarray, start: int, v: np.ndarray, partial: np.ndarray, dots: np.ndarray
    ) -> None:
        """On one cache-resident column block (u's slice `part` already formed): v = Σ_{j∈rows} c_j Δ_j from the
        |rows| × block slice, u − v into `without`, and Δ_i·v added to `dots`. `v` and `partial` are scratch."""
        v = v[: part.size]
        first, last = int(self.rows[0]), int(self.rows[-1]) + 1
        dropped = block[first:last] if last - first == self.rows.size else block[self.rows]
        np.matmul(self.weights, dropped, out=v)
        np.subtract(part, v, out=self.without[start : start + part.size])
        np.matmul(block, v, out=partial)
        dots += partial


def _fused_columns(
    updates: np.ndarray,
    weights: np.ndarray,
    aggregate: np.ndarray,
    lo: int,
    hi: int,
    removal: _Removal | None = None,
    runs: list[tuple[int, int]] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The fused pass over columns [lo, hi) on parallel threads: fills aggregate[lo:hi] and
    returns the dots (float64). With a removal, per cache-resident block also v = Σ_{j∈rows}
    c_j Δ_j (from the |rows| × block slice), u − v into `removal.without`, and Δ_i·v. With
    `runs`, u is summed over those row ranges only (the others never enter, not even as 0·x)."""
    n = updates.shape[0]
    dtype = aggregate.dtype

    def columns_part(start_column: int, stop_column: int) -> tuple[np.ndarray, np.ndarray | None]:
        # rejected non-finite rows still pass through (their own dots are NaN/inf); the error
        # state is per thread, so it is set here
        with np.errstate(over="ignore", invalid="ignore"):
            return blocks_part(start_column, stop_column)

    def blocks_part(start_column: int, stop_column: int) -> tuple[np.ndarray, np.ndarray | None]:
        dots = np.zeros(n, dtype=np.float64)
        partial = np.empty(n, dtype=dtype)  # per-block dots in the data's dtype, summed in float64
        removed_dots = None if removal is None else np.zeros(n, dtype=np.float64)
        removed = None if removal is None else np.empty(FUSED_BLOCK_COLUMNS, dtype=dtype)
        for start in range(start_column, stop_column, FUSED_BLOCK_COLUMNS):
            stop = min(start + FUSED_BLOCK_COLUMNS, stop_column)
            block = updates[:, start:stop]
            if block.dtype != dtype:
                block = block.astype(dtype)
            part = aggregate[start:stop]
            if runs is None:
                np.matmul(weights, block, out=part)
            else:
                _sum_runs(block, weights, runs, part)
            np.matmul(block, part, out=partial)
            dots += partial
            if removal is not None and removed is not None and removed_dots is not None:
                removal.fold_block(block, part, start, removed, partial, removed_dots)
        return dots, removed_dots

    if hi <= lo:
        return np.zeros(n, dtype=np.float64), None if removal is None else np.zeros(n, dtype=np.float64)
    blocks = -(-(hi - lo) // FUSED_BLOCK_COLUMNS)
    pieces = min(_workers() * PARTS_PER_WORKER, blocks) if n * (hi - lo) > PARALLEL_MIN_ENTRIES else 1
    bounds = [(lo + a, lo + b) for a, b in _split(hi - lo, pieces, FUSED_BLOCK_COLUMNS)]
    results = _parallel(bounds, columns_part)
    dots = np.sum([r[0] for r in results], axis=0)
    if removal is None:
        return dots, None
    return dots, np.sum([r[1] for r in results], axis=0)


def combine_and_dots_speculating(
    updates: np.ndarray, coefficients: np.ndarray, drop_below: float
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray] | None]:
    """`combine_and_dots`, plus the same for the coefficients without the rows predicted to
    have cos(Δ_i, u) < drop_below, from the same single read of the data.

    A probe (the fused pass over the first ~1/32 of the columns) gives partial cosines; the
    rows with a nonzero coefficient below the threshold there are the prediction P. The rest
    of the pass also forms v = Σ_{j∈P} c_j Δ_j and Δ_i·v per block, the probe columns being
    re-read from cache. Returns ((u, dots), (coefficients with P zeroed, u − v, dots − Δ·v)),
    the second part None when nothing (or more than half the rows) is predicted to drop.
    """
    n, d = updates.shape
    dtype = _float_dtype(updates)
    weights = coefficients.astype(dtype)
    aggregate = np.empty(d, dtype=dtype)
    probe = max(FUSED_BLOCK_COLUMNS, (d // PROBE_FRACTION) // FUSED_BLOCK_COLUMNS * FUSED_BLOCK_COLUMNS)
    if probe >= d:
        return combine_and_dots(updates, coefficients), None
    probe_dots, _ = _fused_columns(updates, weights, aggregate, 0, probe)
    probe_norms = np.sqrt(row_dots(updates[:, :probe]))
    probe_aggregate_norm = float(np.sqrt(max(_squared_norm_from_dots(coefficients, probe_dots), 0.0)))
    denominator = probe_norms * probe_aggregate_norm
    with np.errstate(divide="ignore", invalid="ignore"):
        probe_cosines = np.where(denominator > 0, probe_dots / np.where(denominator > 0, denominator, 1.0), 0.0)
    predicted = np.flatnonzero((np.asarray(coefficients) != 0.0) & (probe_cosines < drop_below))
    if predicted.size == 0 or predicted.size > n // 2:
        rest_dots, _ = _fused_columns(updates, weights, aggregate, probe, d)
        dots = probe_dots + rest_dots
        return (combine_and_dots(updates, coefficients) if _poisoned(coefficients, dots) else (aggregate, dots)), None
    removal = _Removal(rows=predicted, weights=weights[predicted], without=np.empty(d, dtype=dtype))
    probe_removed_dots = np.zeros(n, dtype=np.float64)
    scratch, partial = np.empty(FUSED_BLOCK_COLUMNS, dtype=dtype), np.empty(n, dtype=dtype)
    with _blas_single_thread():
        for start in range(0, probe, FUSED_BLOCK_COLUMNS):  # the probe's columns: v and Δ_i·v from cache
            stop = min(start + FUSED_BLOCK_COLUMNS, probe)
            block = updates[:, start:stop]
            if block.dtype != dtype:
                block = block.astype(dtype)
            removal.fold_block(block, aggregate[start:stop], start, scratch, partial, probe_removed_dots)
    rest_dots, rest_removed_dots = _fused_columns(updates, weights, aggregate, probe, d, removal)
    removed_dots = probe_removed_dots if rest_removed_dots is None else probe_removed_dots + rest_removed_dots
    dots = probe_dots + rest_dots
    if _poisoned(coefficients, dots):  # a rejected non-finite row: redo without it, no speculation
        return combine_and_dots(updates, coefficients), None
    without = np.asarray(coefficients, dtype=np.float64).copy()
    without[predicted] = 0.0
    return (aggregate, dots), (without, removal.without, dots - removed_dots)


RuleFactory = Callable[..., Rule]
