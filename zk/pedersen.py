"""Pedersen vector commitments to quantized updates on BN254 G1 (Pedersen 1991).

    Com(u, ρ) = Σ_j u_j·G_j + ρ·H

Binding (under discrete log) makes the committed update unchangeable; a uniformly random
ρ makes the commitment reveal nothing about u. The map is additively homomorphic,

    Σ_i w_i·Com(u_i, ρ_i) = Com(Σ_i w_i·u_i, Σ_i w_i·ρ_i mod r),

which is the whole of layer 1: the contract checks the aggregator's model commitment
against Σ_i w_i·C_i with the EIP-196 precompiles, and anyone holding the aggregate model
and the aggregate blinding opens it (`open_check`, or zk.auditor with an independent library).

Values are signed integers, encoded into F_r by zk.field (v ↦ v mod r). The fast path
splits int64 values by sign, so mcl's Pippenger sees only small magnitudes:
Com = Σ_{u_j>0} |u_j|·G_j − Σ_{u_j<0} |u_j|·G_j + ρ·H.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence

import numpy as np

from zk import mcl
from zk.curve import CURVE_ORDER, INFINITY, Point, check_point
from zk.field import as_integer_vector, check_vector_bound
from zk.generators import DEFAULT_TAG, Generators, load_generators

_INT64_MIN = np.iinfo(np.int64).min


def random_blinding() -> int:
    """A uniformly random non-zero blinding factor ρ ∈ [1, r) from the OS's CSPRNG."""
    return secrets.randbelow(CURVE_ORDER - 1) + 1


def _generators_for(
    d: int, tag: str, generators: Generators | None, cache: str | os.PathLike[str] | None
) -> Generators:
    if generators is None:
        return load_generators(d, tag, cache)
    if generators.d < d:
        raise ValueError(f"{d} values but only {generators.d} generators given")
    return generators.prefix(d)


def _signed_msm(gens: Generators, values: np.ndarray) -> np.ndarray:
    """Σ v_j·G_j for int64 values (none equal to int64's minimum): |v_j| on ±G_j, zeros skipped."""
    rows = np.flatnonzero(values)
    if rows.size == 0:
        return mcl.g1_zero()
    points = gens.raw[rows]  # a copy: negation below never touches the cached generators
    mcl.negate_rows(points, np.flatnonzero(values[rows] < 0))
    return mcl.msm(points, mcl.fr_array_from_small(np.abs(values[rows])))


def commit_raw(values: np.ndarray | Sequence[int], blinding: int, generators: Generators) -> np.ndarray:
    """Com(values, blinding) in mcl's internal form (for callers that keep adding points)."""
    array = as_integer_vector(values)
    if array.size > generators.d:
        raise ValueError(f"{array.size} values but only {generators.d} generators")
    gens = generators.prefix(array.size)
    if array.dtype != object and (array.size == 0 or int(array.min()) != _INT64_MIN):
        body = _signed_msm(gens, array)
    else:  # exact Python ints beyond int64 (large aggregates): full-width scalars, slower
        scalars = mcl.fr_array_from_ints([int(v) for v in array.tolist()])
        body = mcl.msm(gens.raw.copy(), scalars)
    blinding = int(blinding) % CURVE_ORDER
    if blinding == 0:
        return body
    return mcl.g1_add(body, mcl.g1_mul(gens.h_raw, blinding))


def commit(
    values: np.ndarray | Sequence[int],
    blinding: int,
    *,
    tag: str = DEFAULT_TAG,
    bound: int | None = None,
    generators: Generators | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> Point:
    """Com(values, blinding) as an affine point (x, y), ready for uint256[2] calldata.

    values: a 1-D integer array (any integer dtype, or dtype=object for exact big ints);
    bound: if given, every |value| must be ≤ bound (zk.field's unambiguous range).
    """
    array = as_integer_vector(values)
    if bound is not None:
        check_vector_bound(array, bound)
    gens = _generators_for(array.size, tag, generators, cache)
    return mcl.g1_to_affine(commit_raw(array, blinding, gens))


def _check_weights(weights: Sequence[int], count: int) -> list[int]:
    if len(weights) != count:
        raise ValueError(f"{count} commitments but {len(weights)} weights")
    checked = [int(w) for w in weights]
    if any(not 0 <= w < CURVE_ORDER for w in checked):
        raise ValueError("weights must be integers in [0, r), as the on-chain verifier requires")
    return checked


def aggregate_commitment(commitments: Sequence[Point], weights: Sequence[int]) -> Point:
    """Σ_i w_i·C_i (mcl), the value the contract expects as the model commitment.

    Zero weights are skipped, as on chain: an excluded owner's commitment is never read.
    """
    checked = _check_weights(weights, len(commitments))
    live = [
        (check_point(c, f"commitment {i}"), w) for i, (c, w) in enumerate(zip(commitments, checked, strict=True)) if w
    ]
    if not live:
        return INFINITY
    points = np.stack([mcl.g1_from_affine(c) for c, _ in live])
    scalars = mcl.fr_array_from_ints([w for _, w in live])
    return mcl.g1_to_affine(mcl.msm(points, scalars))


def aggregate_values(updates: Sequence[np.ndarray], weights: Sequence[int]) -> np.ndarray:
    """agg = Σ_i w_i·u_i exactly: int64 when it provably fits, else Python ints (dtype=object)."""
    if len(updates) != len(weights):
        raise ValueError(f"{len(updates)} updates but {len(weights)} weights")
    if not updates:
        raise ValueError("no updates to aggregate")
    vectors = [as_integer_vector(u) for u in updates]
    size = vectors[0].size
    if any(v.size != size for v in vectors):
        raise ValueError("updates differ in length")
    ints = [int(w) for w in weights]
    peak = sum(
        abs(w) * (max(abs(int(v.max())), abs(int(v.min()))) if v.size else 0)
        for w, v in zip(ints, vectors, strict=True)
    )
    if peak < 2**63 and all(v.dtype != object for v in vectors):
        total = np.zeros(size, dtype=np.int64)
        for w, v in zip(ints, vectors, strict=True):
            if w:
                total += np.int64(w) * v
        return total
    exact = np.zeros(size, dtype=object)
    for w, v in zip(ints, vectors, strict=True):
        if w:
            exact = exact + np.asarray([w * int(x) for x in v.tolist()], dtype=object)
    return as_integer_vector(exact)


def aggregate_blinding(blindings: Sequence[int], weights: Sequence[int]) -> int:
    """Σ_i w_i·ρ_i mod r: the blinding that opens the aggregate commitment."""
    if len(blindings) != len(weights):
        raise ValueError(f"{len(blindings)} blindings but {len(weights)} weights")
    return sum(int(w) * int(b) for w, b in zip(weights, blindings, strict=True)) % CURVE_ORDER


def open_check(
    values: np.ndarray | Sequence[int],
    blinding: int,
    commitment: Point,
    *,
    tag: str = DEFAULT_TAG,
    bound: int | None = None,
    generators: Generators | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> bool:
    """True iff (values, blinding) opens `commitment` (fast path: mcl, the committing library)."""
    try:
        expected = commit(values, blinding, tag=tag, bound=bound, generators=generators, cache=cache)
    except ValueError:
        return False
    return expected == (int(commitment[0]), int(commitment[1]))
