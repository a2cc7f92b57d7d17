"""Protocol-exact integer arithmetic for every rule whose output goes on chain.

This module *is* the protocol's definition of clipping, cosine scores, the RFFL reputation
update (Xu & Lyu, FL-ICML 2021), removal and aggregation weights. It uses only integers
(Python ints, int64 numpy with explicit overflow guards), floor division and integer square
roots, so a ZK circuit (section 5 of the design) reproduces every number bit for bit by
checking hints of the form a = q·b + r, 0 ≤ r < b and s² ≤ x < (s+1)².

Scales
- Updates q are the task's quantized integers (value = q / 2^scale_bits, see
  marketplace.updates.quantize); Γ is given at the same scale: gamma_q = round(Γ·2^scale_bits).
- Cosines, clip factors, reputations and weights use ONE = 2^FRAC_BITS (FRAC_BITS = 20),
  i.e. resolution ≈ 1e-6.
Rounding
- Every division is floor division (toward −∞). Every square root is ⌊√x⌋ (math.isqrt);
  the identity ⌊√⌊x⌋⌋ = ⌊√x⌋ lets ratios under a root be floored first without changing the
  result, so ⌊ONE·Γ/‖q‖⌋ and trunc(ONE·cos) are exact.
The float twins in aggregator.reputation agree with this module to within a few ONE⁻¹ per
value (tested); on chain only these integers count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

FRAC_BITS = 20
ONE = 1 << FRAC_BITS
_INT64_SAFE = 1 << 62


def to_fixed(value: float | Fraction) -> int:
    """⌊value·ONE⌋ for task parameters (α, thresholds) published as decimals or fractions."""
    return math.floor(Fraction(value) * ONE)


def floor_div(numerator: int, denominator: int) -> int:
    """Floor division with a clear error for a zero denominator."""
    if denominator == 0:
        raise ZeroDivisionError("fixed-point division by zero")
    return numerator // denominator


def _as_int_matrix(q: np.ndarray) -> np.ndarray:
    if q.dtype.kind not in "iu":
        raise TypeError(f"fixed-point rules need integer updates, got dtype {q.dtype}")
    return q


def _max_abs(values: np.ndarray) -> int:
    return int(np.max(np.abs(values.astype(np.int64)))) if values.size else 0


def exact_dots(q: np.ndarray, v: np.ndarray) -> list[int]:
    """[q_i · v] as exact Python ints, summing int64 column blocks that cannot overflow."""
    q = _as_int_matrix(np.atleast_2d(q))
    v = _as_int_matrix(np.asarray(v))
    bound = max(_max_abs(q) * _max_abs(v), 1)
    block = _INT64_SAFE // bound
    totals = [0] * q.shape[0]
    if block < 1:  # entries too large for int64 products: exact but slow object arithmetic
        obj = q.astype(object) @ v.astype(object)
        return [int(x) for x in obj]
    qi = q.astype(np.int64, copy=False)
    vi = v.astype(np.int64, copy=False)
    for start in range(0, q.shape[1], block):
        part = qi[:, start : start + block] @ vi[start : start + block]
        totals = [t + int(p) for t, p in zip(totals, part, strict=True)]
    return totals


def exact_squared_norms(q: np.ndarray) -> list[int]:
    """[Σ_j q_ij²] as exact Python ints."""
    q = _as_int_matrix(np.atleast_2d(q))
    bound = max(_max_abs(q) ** 2, 1)
    block = _INT64_SAFE // bound
    totals = [0] * q.shape[0]
    if block < 1:
        return [int(sum(int(x) * int(x) for x in row)) for row in q]
    qi = q.astype(np.int64, copy=False)
    for start in range(0, q.shape[1], block):
        chunk = qi[:, start : start + block]
        part = np.einsum("ij,ij->i", chunk, chunk)
        totals = [t + int(p) for t, p in zip(totals, part, strict=True)]
    return totals


def clip_factor(squared_norm: int, gamma_q: int) -> int:
    """⌊ONE·min(1, Γ/‖q‖)⌋ = ONE if ‖q‖ ≤ Γ else ⌊√⌊Γ²·ONE²/‖q‖²⌋⌋."""
    if gamma_q <= 0:
        raise ValueError("gamma_q must be positive")
    if squared_norm <= gamma_q * gamma_q:
        return ONE
    return math.isqrt((gamma_q * gamma_q * ONE * ONE) // squared_norm)


def cosine(dot: int, squared_norm_a: int, squared_norm_b: int) -> int:
    """trunc(ONE·cos) = sign(dot)·⌊√⌊ONE²·dot²/(‖a‖²‖b‖²)⌋⌋; 0 when either vector is zero."""
    denominator = squared_norm_a * squared_norm_b
    if denominator == 0 or dot == 0:
        return 0
    magnitude = math.isqrt((ONE * ONE * dot * dot) // denominator)
    return min(magnitude, ONE) if dot > 0 else -min(magnitude, ONE)


def weighted_mean(q: np.ndarray, weights: Sequence[int], denominator: int | None = None) -> np.ndarray:
    """ū = ⌊Σ_i W_i q_i / D⌋ per coordinate, D = Σ_i W_i unless given (int64, exact)."""
    q = _as_int_matrix(np.atleast_2d(q))
    w = [int(x) for x in weights]
    if len(w) != q.shape[0]:
        raise ValueError(f"{len(w)} weights for {q.shape[0]} updates")
    if any(x < 0 for x in w):
        raise ValueError("weights must be non-negative")
    total = sum(w) if denominator is None else int(denominator)
    if total <= 0 or sum(w) == 0:
        return np.zeros(q.shape[1], dtype=np.int64)
    if sum(w) * max(_max_abs(q), 1) < _INT64_SAFE:
        numerator = np.asarray(w, dtype=np.int64) @ q.astype(np.int64, copy=False)
        return numerator // total
    numerator = np.asarray(w, dtype=object) @ q.astype(object)
    # With D ≥ Σ W (clip factors ≤ ONE), |ū_j| ≤ max|q| fits int64 even when the numerator does not.
    return np.array([int(x) // total for x in numerator], dtype=np.int64)


def reputation_step(reputation: int, phi: int, alpha_fp: int) -> int:
    """r ← max(0, ⌊(A·r + (ONE−A)·φ)/ONE⌋) with A = ⌊α·ONE⌋ (RFFL step 4, negatives clamped)."""
    return max(0, (alpha_fp * reputation + (ONE - alpha_fp) * phi) // ONE)


def normalise(values: Sequence[int]) -> list[int]:
    """⌊v_i·ONE/Σv⌋; all zeros stay zeros."""
    total = sum(values)
    if total == 0:
        return [0 for _ in values]
    return [(v * ONE) // total for v in values]


def below_removal_threshold(reputation: int, active_count: int, beta: Fraction) -> bool:
    """r < β/|R| at scale ONE, i.e. r·|R|·β_den < β_num·ONE (exact rational β, default 1/3)."""
    return reputation * active_count * beta.denominator < beta.numerator * ONE


def removal_bits(
    removed_before: int, active: Sequence[bool], gone: Sequence[bool], weights: Sequence[int], last_round: bool
) -> int:
    """The removal mask a round posts: owners not removed before that are inactive or fell below β/|R| now.

    An owner the rules remove while its update still has weight is paid for this round and posted in the next,
    where it is inactive with weight 0; the last round has no next one, so it is posted at once (the contract
    accepts a removal with weight only there)."""
    return sum(
        1 << i
        for i, (a, g, w) in enumerate(zip(active, gone, weights, strict=True))
        if not removed_before >> i & 1 and (not a or g) and (w == 0 or last_round)
    )


def data_size_shares(sizes: Sequence[int]) -> list[int]:
    """⌊n_i·ONE/Σn⌋: RFFL's first-round weights."""
    total = sum(int(s) for s in sizes)
    if total <= 0:
        raise ValueError("data sizes must sum to a positive number")
    return [(int(s) * ONE) // total for s in sizes]


@dataclass(frozen=True)
class FixedRoundOutcome:
    """Everything the round posts or proves, as integers (see module docstring for scales)."""

    clip_factors: list[int]
    weights: list[int]
    aggregate: np.ndarray
    phis: list[int]
    reputations: list[int]
    removed: list[bool]


def rffl_round(
    q: np.ndarray,
    *,
    submitted: Sequence[bool],
    kept: Sequence[bool],
    active: Sequence[bool],
    base_weights: Sequence[int],
    reputations: Sequence[int],
    gamma_q: int,
    alpha_fp: int,
    beta: Fraction,
    capped: bool = False,
    missing_fp: int = 0,
) -> FixedRoundOutcome:
    """One RFFL round on integers: clip → weights → ū → φ → reputation → removal.

    q holds one row per participant (zeros where nothing valid was submitted). `base_weights`
    are data-size shares in the first round and reputations afterwards (both at scale ONE).
    On-chain weight W_i = ⌊base_i·c_i/ONE⌋ for kept active rows, so Σ W_i q_i is the clipped,
    weighted aggregate the Pedersen check verifies; ū = ⌊Σ W_i q_i / Σ_kept base_i⌋ is the new
    model delta (RFFL's u = Σ r_i·clip(Δ_i) with Σ r = 1 over the kept rows).
    φ_i = trunc(ONE·cos(q_i, ū)) for active rows that submitted, `missing_fp` (0 by default) for active rows
    that did not.
    `capped` (rule versions rffl-v3, rffl-v4): a row the filters dropped scores min(φ_i, missing_fp), no better than a
    sender of nothing, since a dropped update gave the model nothing; otherwise a boosted copy of an honest step
    keeps the honest cosine and the top reputation while it is filtered round after round.
    `missing_fp` ≤ 0: 0 in rule versions rffl-v1 to rffl-v3, a task parameter under rffl-v4 and in a Pedersen or
    unverified task (missing_score).
    """
    if not -ONE <= missing_fp <= 0:
        raise ValueError(f"missing_fp must lie in [-ONE, 0], got {missing_fp}")
    n = q.shape[0]
    for name, seq in (("submitted", submitted), ("kept", kept), ("active", active)):
        if len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} entries for {n} rows")
    squared = exact_squared_norms(q)
    factors = [clip_factor(s, gamma_q) if sub else 0 for s, sub in zip(squared, submitted, strict=True)]
    weights = [
        (int(b) * c) // ONE if (k and a and sub) else 0
        for b, c, k, a, sub in zip(base_weights, factors, kept, active, submitted, strict=True)
    ]
    denominator = sum(
        int(b) for b, k, a, sub in zip(base_weights, kept, active, submitted, strict=True) if k and a and sub
    )
    aggregate = weighted_mean(q, weights, denominator)
    aggregate_sq = exact_squared_norms(aggregate[None, :])[0]
    dots = exact_dots(q, aggregate)
    phis = [
        (cosine(dot, sq, aggregate_sq) if sub else missing_fp) if a else 0
        for dot, sq, a, sub in zip(dots, squared, active, submitted, strict=True)
    ]
    if capped:  # an owner that is gone scores nothing, as in every circuit
        phis = [p if k or not a else min(p, missing_fp) for p, k, a in zip(phis, kept, active, strict=True)]
    updated = [
        reputation_step(int(r), phi, alpha_fp) if a else 0 for r, phi, a in zip(reputations, phis, active, strict=True)
    ]
    updated = normalise(updated)
    active_count = sum(1 for a in active if a)
    removed = [bool(a) and below_removal_threshold(r, active_count, beta) for r, a in zip(updated, active, strict=True)]
    updated = normalise([0 if gone else r for r, gone in zip(updated, removed, strict=True)])
    return FixedRoundOutcome(
        clip_factors=factors,
        weights=weights,
        aggregate=aggregate,
        phis=phis,
        reputations=updated,
        removed=removed,
    )


def cosine_filter(q: np.ndarray, weights: Sequence[int], threshold_fp: int) -> list[bool]:
    """Keep row i iff trunc(ONE·cos(q_i, ⌊Σ W q/Σ W⌋)) ≥ threshold_fp (integer cosine filter)."""
    reference = weighted_mean(q, weights)
    squared = exact_squared_norms(q)
    reference_sq = exact_squared_norms(reference[None, :])[0]
    dots = exact_dots(q, reference)
    return [cosine(d, s, reference_sq) >= threshold_fp for d, s in zip(dots, squared, strict=True)]


def lower_median(values: Sequence[int]) -> int:
    """The ⌈m/2⌉-th smallest of m values (0 for none): an element of the list, so a circuit checks it by
    counting, with no average of the two middle values to divide."""
    ordered = sorted(int(v) for v in values)
    return ordered[(len(ordered) - 1) // 2] if ordered else 0


def norm_ratio_filter(squared_norms: Sequence[int], live: Sequence[bool], ratio_sq_fp: int) -> list[bool]:
    """Keep live row i iff ‖q_i‖²·ONE ≤ K·med, K = ⌊k²·ONE⌋ and med the lower median of the live rows' ‖q‖²:
    drops any update more than k times the round's median norm (a scaled update; honest norms within a round
    stay within a few times each other). K = 0 keeps every live row."""
    median = lower_median([s for s, ok in zip(squared_norms, live, strict=True) if ok])
    return [bool(ok) and (ratio_sq_fp == 0 or int(s) * ONE <= ratio_sq_fp * median)
            for s, ok in zip(squared_norms, live, strict=True)]  # fmt: skip


def filtered_rows(
    q: np.ndarray, live: Sequence[bool], base_weights: Sequence[int], threshold_fp: int, ratio_sq_fp: int
) -> list[bool]:
    """The protocol's own filters: a live row is kept iff cosine_filter keeps it at τ (reference weights: the live
    rows' base weights) and norm_ratio_filter at K. What rffl-v2 (K = 0) and rffl-v3 prove; a Pedersen task that
    sets them runs the same integers unproven."""
    weights = [int(b) if ok else 0 for b, ok in zip(base_weights, live, strict=True)]
    passed = cosine_filter(q, weights, threshold_fp)
    normal = norm_ratio_filter(exact_squared_norms(q), live, ratio_sq_fp)
    return [bool(ok and p and m) for ok, p, m in zip(live, passed, normal, strict=True)]
