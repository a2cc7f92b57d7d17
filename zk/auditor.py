"""The auditor's verifier for layer 1, built on py_ecc: it trusts neither the aggregator nor mcl.

Commitments are made with mcl (zk.pedersen). An auditor should not have to trust that
library, so every check here recomputes with py_ecc's pure-Python BN254 arithmetic
(`py_ecc.optimized_bn128`), plus a Pippenger bucket sum written here, which needs only
point additions (~12 µs each in py_ecc):

- `check_aggregation`: model commitment == Σ w_i·C_i, the contract's check, off chain.
- `open_model`: the aggregate model (e.g. fetched from IPFS) and the aggregate blinding
  open the on-chain model commitment. O(d) additions: seconds for 10^5 parameters, tens
  of seconds for 10^6. `method="fast"` does the same with mcl and says so in its result.
- `check_generators`: re-derives a random sample of the cached generators (and H) from
  the public tag in plain Python, so a corrupted or planted cache cannot fool the opening.

Each check returns a `Check` with a one-line verdict suitable for the CLI.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from py_ecc import optimized_bn128 as bn

from zk.curve import CURVE_ORDER, INFINITY, Point, is_on_curve
from zk.field import FieldRangeError, as_integer_vector, check_vector_bound
from zk.generators import DEFAULT_TAG, Generators, load_generators, reference_generator

PY_ECC = "py_ecc (independent of the committing library)"
FAST = "mcl (fast path: the same library that made the commitments, not independent)"

JacobianPoint = tuple[bn.FQ, bn.FQ, bn.FQ]
_ZERO: JacobianPoint = bn.Z1


@dataclass(frozen=True)
class Check:
    """One audit check's verdict."""

    name: str
    passed: bool
    detail: str
    seconds: float
    library: str

    def __str__(self) -> str:
        mark = "ok" if self.passed else "FAILED"
        return f"[{mark}] {self.name}: {self.detail} ({self.seconds:.2f} s, {self.library})"


def _jacobian(point: Point) -> JacobianPoint:
    if tuple(point) == INFINITY:
        return _ZERO
    x, y = bn.FQ(int(point[0])), bn.FQ(int(point[1]))
    return (x, y, bn.FQ(1))


def _affine(point: JacobianPoint) -> Point:
    if bn.is_inf(point):
        return INFINITY
    x, y = bn.normalize(point)
    return (int(x), int(y))


def _add(a: JacobianPoint | None, b: JacobianPoint) -> JacobianPoint:
    return b if a is None else bn.add(a, b)


def _window(count: int, bits: int) -> int:
    """The bucket width c minimising ⌈bits/c⌉·(count + 2^(c+1)) additions."""
    return min(range(1, 21), key=lambda c: math.ceil(bits / c) * (count + 2 ** (c + 1)))


def msm(points: Sequence[JacobianPoint], scalars: Sequence[int]) -> JacobianPoint:
    """Σ s_i·P_i with py_ecc additions (Pippenger's bucket method); negative s_i use −P_i."""
    terms = [(bn.neg(p) if s < 0 else p, abs(s)) for p, s in zip(points, scalars, strict=True) if s]
    if not terms:
        return _ZERO
    bits = max(s for _, s in terms).bit_length()
    c = _window(len(terms), bits)
    mask = (1 << c) - 1
    result: JacobianPoint | None = None
    for window in reversed(range(math.ceil(bits / c))):
        if result is not None:
            for _ in range(c):
                result = bn.double(result)
        buckets: list[JacobianPoint | None] = [None] * (mask + 1)
        shift = window * c
        for point, scalar in terms:
            digit = (scalar >> shift) & mask
            if digit:
                buckets[digit] = _add(buckets[digit], point)
        running: JacobianPoint | None = None
        total: JacobianPoint | None = None
        for digit in range(mask, 0, -1):
            bucket = buckets[digit]
            if bucket is not None:
                running = _add(running, bucket)
            if running is not None:
                total = _add(total, running)
        if total is not None:
            result = _add(result, total)
    return result if result is not None else _ZERO


def weighted_sum(commitments: Sequence[Point], weights: Sequence[int]) -> Point:
    """Σ w_i·C_i with py_ecc, zero weights skipped, points validated (ValueError otherwise)."""
    if len(commitments) != len(weights):
        raise ValueError(f"{len(commitments)} commitments but {len(weights)} weights")
    total = _ZERO
    for i, (c, w) in enumerate(zip(commitments, weights, strict=True)):
        if int(w) == 0:
            continue
        if not 0 < int(w) < CURVE_ORDER:
            raise ValueError(f"weight {i} is not in [0, r)")
        if tuple(c) == INFINITY or not is_on_curve((int(c[0]), int(c[1]))):
            raise ValueError(f"commitment {i} is not a finite BN254 G1 point")
        point = _jacobian(c)
        if not bn.is_on_curve(point, bn.b):
            raise ValueError(f"commitment {i} is not on the curve")
        total = bn.add(total, bn.multiply(point, int(w)))
    return _affine(total)


def check_aggregation(commitments: Sequence[Point], weights: Sequence[int], model_commitment: Point) -> Check:
    """The contract's check, recomputed: model commitment == Σ w_i·C_i."""
    start = time.perf_counter()
    try:
        expected = weighted_sum(commitments, weights)
    except ValueError as exc:
        return Check("aggregation", False, f"malformed round data: {exc}", time.perf_counter() - start, PY_ECC)
    model = (int(model_commitment[0]), int(model_commitment[1]))
    passed = expected == model and model != INFINITY
    detail = (
        f"model commitment equals the weighted sum of {sum(1 for w in weights if int(w))} commitments"
        if passed
        else "the model commitment is NOT the weighted sum of the data owners' commitments"
    )
    return Check("aggregation", passed, detail, time.perf_counter() - start, PY_ECC)


def commit_py_ecc(values: np.ndarray | Sequence[int], blinding: int, generators: Generators) -> Point:
    """Com(values, blinding) computed with py_ecc only (slow: O(d) additions)."""
    array = as_integer_vector(values)
    if array.size > generators.d:
        raise ValueError(f"{array.size} values but only {generators.d} generators")
    points = [_jacobian(p) for p in generators.prefix(array.size).points()]
    body = msm(points, [int(v) for v in array.tolist()])
    blinded = bn.add(body, bn.multiply(_jacobian(generators.h), int(blinding) % CURVE_ORDER))
    return _affine(blinded)


def open_model(
    values: np.ndarray | Sequence[int],
    blinding: int,
    model_commitment: Point,
    *,
    tag: str = DEFAULT_TAG,
    bound: int | None = None,
    method: str = "py_ecc",
    cache: str | os.PathLike[str] | None = None,
) -> Check:
    """Does (aggregate model, aggregate blinding) open the posted model commitment?

    method "py_ecc" is the independent path; "fast" uses mcl and is labelled as such.
    """
    start = time.perf_counter()
    array = as_integer_vector(values)
    if bound is not None:
        try:
            check_vector_bound(array, bound)
        except FieldRangeError as exc:
            return Check("model opening", False, f"model out of range: {exc}", time.perf_counter() - start, PY_ECC)
    generators = load_generators(array.size, tag, cache)
    if method == "py_ecc":
        actual, library = commit_py_ecc(array, blinding, generators), PY_ECC
    elif method == "fast":
        from zk.pedersen import commit

        actual, library = commit(array, blinding, generators=generators), FAST
    else:
        raise ValueError(f"unknown method {method!r}: use 'py_ecc' or 'fast'")
    passed = actual == (int(model_commitment[0]), int(model_commitment[1]))
    detail = (
        f"the model ({array.size} parameters) opens the on-chain model commitment"
        if passed
        else "the model file does NOT open the on-chain model commitment (altered model or wrong blinding)"
    )
    return Check("model opening", passed, detail, time.perf_counter() - start, library)


def check_generators(
    d: int,
    *,
    tag: str = DEFAULT_TAG,
    sample: int | None = 64,
    seed: int | None = None,
    cache: str | os.PathLike[str] | None = None,
) -> Check:
    """Re-derive H and `sample` random G_j (all of them if sample is None) in plain Python."""
    start = time.perf_counter()
    generators = load_generators(d, tag, cache)
    indices = list(range(d)) if sample is None or sample >= d else random.Random(seed).sample(range(d), sample)
    bad = [j for j in sorted(indices) if generators.point(j) != reference_generator(tag, b"G", j)]
    h_ok = generators.h == reference_generator(tag, b"H", 0)
    passed = not bad and h_ok
    if passed:
        detail = f"H and {len(indices)} of {d} generators match their hash-to-curve derivation"
    else:
        detail = f"cached generators differ from the derivation (first bad index {bad[0] if bad else 'H'})"
    return Check("generators", passed, detail, time.perf_counter() - start, "hashlib + Python integers")


def audit_round(
    commitments: Sequence[Point],
    weights: Sequence[int],
    model_commitment: Point,
    model_values: np.ndarray | Sequence[int] | None = None,
    model_blinding: int | None = None,
    *,
    tag: str = DEFAULT_TAG,
    bound: int | None = None,
    method: str = "py_ecc",
    generator_sample: int | None = 64,
    cache: str | os.PathLike[str] | None = None,
) -> list[Check]:
    """Every layer-1 check of one round; opening checks need the model and its blinding."""
    checks = [check_aggregation(commitments, weights, model_commitment)]
    if model_values is not None and model_blinding is not None:
        size = as_integer_vector(model_values).size
        checks.append(check_generators(size, tag=tag, sample=generator_sample, cache=cache))
        checks.append(
            open_model(model_values, model_blinding, model_commitment, tag=tag, bound=bound, method=method, cache=cache)
        )
    return checks
