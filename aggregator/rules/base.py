"""The common shape of every robust aggregation rule.

Rules never copy or modify the n × d update matrix: they return a kept mask and a per-row
scale (clipping multiplies a row by a factor ≤ 1), which later steps fold into the
aggregation weights. At n = 100, d = 10^6 a copy is 400 MB and a full memory pass, so
keeping the raw rows untouched is what makes a round cost a few passes over the data.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np

from aggregator.rules import passes

#: validation loss of each row of a matrix of flat parameter vectors (lower is better)
ValidationLoss = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RoundContext:
    """What a rule may know about the round besides the updates themselves."""

    senders: tuple[str, ...]
    data_sizes: np.ndarray | None = None
    reference_weights: np.ndarray | None = None
    expected_attackers: int | None = None
    seed: int = 0
    # each sender's previous raw update, for rules that compare a sender with itself (`needs_history`)
    history: Mapping[str, np.ndarray] | None = None
    # the global model the updates were trained from and the validation loss of parameter rows, for rules that
    # try an update on the task's validation set (`needs_validation`)
    model: np.ndarray | None = None
    validation_loss: ValidationLoss | None = None

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
            self.cache.raw_sq_norms = passes.row_squared_norms(self.updates)
        return np.sqrt(self.cache.raw_sq_norms)

    def effective_norms(self) -> np.ndarray:
        return self.scale * self.raw_norms()

    def effective_coefficients(self, weights: np.ndarray) -> np.ndarray:
        """Per-row multipliers of the raw rows for Σ_kept weights_i · scale_i · updates_i."""
        return np.where(self.kept, np.asarray(weights, dtype=np.float64) * self.scale, 0.0)

    def combine_and_dots(
        self, weights: np.ndarray, *, likely_drop_below: float | None = None, release: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """u = Σ_kept w_i s_i Δ_i and the dot product of every raw row with u, in one fused pass.

        The result is cached for later requests (a downdate starts from it); `release` hands it
        over instead (it leaves the cache), so that the last consumer, the reputation, may scale
        u in place rather than pay for a fresh d-vector.

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
                cached = passes.combine_and_dots(self.updates, coefficients)
            else:
                cached, speculative = passes.combine_and_dots_speculating(self.updates, coefficients, likely_drop_below)
                if speculative is not None:
                    without, aggregate, dots = speculative
                    self.cache.combinations.setdefault(without.tobytes(), (aggregate, dots))
        if release:
            self.cache.combinations.pop(key, None)
        else:
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
            removed = passes.combine_rows(self.updates, old, dropped)
            new_aggregate = aggregate - removed
            # Δ_i·v for every row: one row-sequential pass over the data (the only full read here)
            new_dots = dots - passes.row_dots(self.updates, removed)
            return new_aggregate, new_dots
        return None

    def cosines_to(
        self, weights: np.ndarray, *, likely_drop_below: float | None = None, release: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """(u, cos(Δ_i, u) for every raw row); a zero row or a zero u has cosine 0. `release`: see
        `combine_and_dots`."""
        aggregate, dots = self.combine_and_dots(weights, likely_drop_below=likely_drop_below, release=release)
        # ‖u‖² = Σ_i c_i·(Δ_i·u): free from the dots already computed, no extra pass over u
        squared = passes.squared_norm_from_dots(self.effective_coefficients(weights), dots)
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
            raw = passes.gram_matrix(self.updates, index)
        self.cache.gram[key] = raw
        s = self.scale[index]
        return raw * np.outer(s, s)

    def coordinate_median(self) -> np.ndarray:
        """Coordinate-wise median of the effective kept rows, without materialising them."""
        index = np.flatnonzero(self.kept)
        return passes.coordinate_median(self.updates, index, self.scale[index])

    def coordinate_trimmed_mean(self, cut: int) -> np.ndarray:
        """Coordinate-wise mean of the effective kept rows, `cut` trimmed at each end, without materialising them."""
        index = np.flatnonzero(self.kept)
        return passes.coordinate_trimmed_mean(self.updates, index, self.scale[index], cut)

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


def _sub_gram(cached: dict[bytes, np.ndarray], index: np.ndarray) -> np.ndarray | None:
    """The Gram matrix of rows `index` cut from a cached one over a superset of them, if any
    (a rule that drops rows after another one computed the Gram matrix costs no pass over the data)."""
    for key, gram in cached.items():
        known = np.frombuffer(key, dtype=index.dtype)
        positions = np.searchsorted(known, index)
        if positions.size and positions[-1] < known.size and np.array_equal(known[positions], index):
            return gram[np.ix_(positions, positions)]
    return None


RuleFactory = Callable[..., Rule]
