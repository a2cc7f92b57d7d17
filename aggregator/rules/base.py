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

# Column block for fused passes: 100 rows × 8192 float32 ≈ 3.3 MB per thread, which stays in
# L3 between the two matrix-vector products of `combine_and_dots` (measured on a 2-core EPYC:
# 8192 beat 4096 and 16384; shorter row segments defeat the hardware prefetcher).
FUSED_BLOCK_COLUMNS = 8192
NORM_BLOCK_COLUMNS = 65536
# Below this many entries threads cost more than they save.
PARALLEL_MIN_ENTRIES = 1 << 22
PARALLEL_WORKERS = 2


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

    def combine_and_dots(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """u = Σ_kept w_i s_i Δ_i and the dot product of every raw row with u, in one fused pass."""
        coefficients = self.effective_coefficients(weights)
        key = coefficients.tobytes()
        cached = self.cache.combinations.get(key)
        if cached is None:
            cached = self._downdate(coefficients)
        if cached is None:
            cached = combine_and_dots(self.updates, coefficients)
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
            removed = np.zeros_like(aggregate)
            for j in dropped:  # row by row: no k × d copy of the dropped rows
                removed += aggregate.dtype.type(old[j]) * self.updates[j]
            new_aggregate = (aggregate - removed).astype(aggregate.dtype, copy=False)
            new_dots = dots - (self.updates @ removed.astype(self.updates.dtype, copy=False)).astype(np.float64)
            return new_aggregate, new_dots
        return None

    def cosines_to(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(u, cos(Δ_i, u) for every raw row); a zero row or a zero u has cosine 0."""
        aggregate, dots = self.combine_and_dots(weights)
        # ‖u‖² = Σ_i c_i·(Δ_i·u): free from the dots already computed, no extra pass over u
        squared = float(self.effective_coefficients(weights) @ dots)
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
            rows = self.updates[index]
            raw = (rows @ rows.T).astype(np.float64)
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
    if len(parts) == 1:
        return [work(*parts[0])]
    with _blas_single_thread():
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


def row_squared_norms(updates: np.ndarray) -> np.ndarray:
    """Σ_j x_ij² per row in float64; float32 column blocks are summed in float64 to bound rounding."""
    n, d = updates.shape
    if updates.dtype != np.float32:
        rows = updates.astype(np.float64, copy=False)
        return np.einsum("ij,ij->i", rows, rows)
    block = NORM_BLOCK_COLUMNS

    def rows_part(lo: int, hi: int) -> np.ndarray:
        out = np.zeros(hi - lo, dtype=np.float64)
        for start in range(0, d, block):
            chunk = updates[lo:hi, start : start + block]
            out += np.einsum("ij,ij->i", chunk, chunk)
        return out

    pieces = min(_workers(), n) if n * d > PARALLEL_MIN_ENTRIES else 1
    return np.concatenate(_parallel(_split(n, pieces), rows_part))


def combine_and_dots(updates: np.ndarray, coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """u = coefficientsᵀ·updates and updates·u, blocked over columns so each block is read once.

    Rows with coefficient 0 still get their dot product, so filtered senders can be scored.
    Column ranges run on parallel threads; each thread's blocks stay in cache between the two
    matrix-vector products.
    """
    n, d = updates.shape
    dtype = updates.dtype if updates.dtype in (np.float32, np.float64) else np.float64
    weights = coefficients.astype(dtype)
    aggregate = np.empty(d, dtype=dtype)

    def columns_part(lo: int, hi: int) -> np.ndarray:
        dots = np.zeros(n, dtype=np.float64)
        partial = np.empty(n, dtype=dtype)  # per-block dots in the data's dtype, summed in float64
        for start in range(lo, hi, FUSED_BLOCK_COLUMNS):
            stop = min(start + FUSED_BLOCK_COLUMNS, hi)
            block = updates[:, start:stop]
            if block.dtype != dtype:
                block = block.astype(dtype)
            part = aggregate[start:stop]
            np.dot(weights, block, out=part)
            np.dot(block, part, out=partial)
            dots += partial
        return dots

    pieces = _workers() if n * d > PARALLEL_MIN_ENTRIES else 1
    return aggregate, np.sum(_parallel(_split(d, pieces, FUSED_BLOCK_COLUMNS), columns_part), axis=0)


RuleFactory = Callable[..., Rule]
