"""Pedersen vector commitments: mcl agrees with py_ecc, the sum is homomorphic, openings bind."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from py_ecc import optimized_bn128 as bn

from zk import mcl, pedersen
from zk.auditor import commit_py_ecc
from zk.curve import CURVE_ORDER, FIELD_MODULUS, INFINITY, is_on_curve
from zk.field import FieldRangeError
from zk.generators import Generators, forget_in_memory, load_generators

D = 40


@pytest.fixture
def gens(tmp_path: Path) -> Generators:
    forget_in_memory()
    return load_generators(D, cache=tmp_path)


def naive_py_ecc(values: list[int], blinding: int, gens: Generators) -> tuple[int, int]:
    total = bn.multiply((bn.FQ(gens.h[0]), bn.FQ(gens.h[1]), bn.FQ(1)), blinding % CURVE_ORDER)
    for v, (x, y) in zip(values, gens.points(), strict=False):
        total = bn.add(total, bn.multiply((bn.FQ(x), bn.FQ(y), bn.FQ(1)), v % CURVE_ORDER))
    x, y = bn.normalize(total)
    return (int(x), int(y))


def test_mcl_agrees_with_py_ecc(gens: Generators) -> None:
    rng = np.random.default_rng(1)
    for high in (2**7, 2**15, 2**31, 2**62):
        values = rng.integers(-high, high, size=D)
        rho = pedersen.random_blinding()
        expected = naive_py_ecc([int(v) for v in values], rho, gens)
        assert pedersen.commit(values, rho, generators=gens) == expected
        assert commit_py_ecc(values, rho, gens) == expected


def test_big_integers_and_int64_minimum_are_exact(gens: Generators) -> None:
    values = [2**62, -(2**63), 2**100, -(2**100), 7]
    expected = naive_py_ecc(values, 11, gens)
    assert pedersen.commit(np.array(values, dtype=object), 11, generators=gens) == expected
    small = np.array([2**62, -(2**63), 5], dtype=np.int64)
    assert pedersen.commit(small, 3, generators=gens) == naive_py_ecc([int(v) for v in small], 3, gens)


def test_commitment_is_a_curve_point_and_hides_with_blinding(gens: Generators) -> None:
    values = np.arange(D) - 20
    first = pedersen.commit(values, pedersen.random_blinding(), generators=gens)
    second = pedersen.commit(values, pedersen.random_blinding(), generators=gens)
    assert is_on_curve(first) and first != second
    assert pedersen.commit(np.zeros(D, dtype=np.int64), 0, generators=gens) == INFINITY


def test_homomorphism(gens: Generators) -> None:
    rng = np.random.default_rng(2)
    updates = [rng.integers(-(2**15), 2**15, size=D) for _ in range(4)]
    blindings = [pedersen.random_blinding() for _ in updates]
    weights = [3, 0, 2**20, 1]
    commitments = [pedersen.commit(u, b, generators=gens) for u, b in zip(updates, blindings, strict=True)]
    aggregate = pedersen.aggregate_values(updates, weights)
    assert aggregate.tolist() == sum(w * u.astype(object) for w, u in zip(weights, updates, strict=True)).tolist()
    blinding = pedersen.aggregate_blinding(blindings, weights)
    model = pedersen.aggregate_commitment(commitments, weights)
    assert model == pedersen.commit(aggregate, blinding, generators=gens)
    assert pedersen.open_check(aggregate, blinding, model, generators=gens)


def test_aggregate_values_switches_to_exact_ints_on_overflow() -> None:
    updates = [np.array([2**62, -(2**62)], dtype=np.int64)] * 2
    total = pedersen.aggregate_values(updates, [4, 4])
    assert total.dtype == object and total.tolist() == [2**65, -(2**65)]


def test_opening_fails_for_any_change(gens: Generators) -> None:
    values = np.arange(D, dtype=np.int64) * 3 - 50
    rho = pedersen.random_blinding()
    c = pedersen.commit(values, rho, generators=gens)
    changed = values.copy()
    changed[17] += 1
    assert pedersen.open_check(values, rho, c, generators=gens)
    assert not pedersen.open_check(changed, rho, c, generators=gens)
    assert not pedersen.open_check(values, rho + 1, c, generators=gens)
    assert not pedersen.open_check(values[:-1], rho, c, generators=gens)
    assert not pedersen.open_check(values, rho, c, bound=10, generators=gens)  # out of the declared range


def test_bound_is_enforced_on_commit(gens: Generators) -> None:
    with pytest.raises(FieldRangeError):
        pedersen.commit(np.array([5, -6]), 1, bound=5, generators=gens)


def test_weights_must_be_reduced(gens: Generators) -> None:
    c = pedersen.commit(np.ones(3, dtype=np.int64), 5, generators=gens)
    with pytest.raises(ValueError, match=r"\[0, r\)"):
        pedersen.aggregate_commitment([c], [CURVE_ORDER])
    with pytest.raises(ValueError, match="not on BN254"):
        pedersen.aggregate_commitment([(1, 3)], [1])
    assert pedersen.aggregate_commitment([(1, 3)], [0]) == INFINITY


def test_montgomery_tables_match_mcl() -> None:
    rng = np.random.default_rng(3)
    for bits in (1, 16, 17, 32, 48, 63):
        values = rng.integers(0, 2**bits, size=500, dtype=np.uint64) if bits < 63 else rng.integers(0, 2**63 - 1, 500)
        assert (mcl.fr_array_from_small(values) == mcl.fr_array_from_ints([int(v) for v in values])).all()


def test_chunked_threaded_msm_equals_one_call(gens: Generators, monkeypatch: pytest.MonkeyPatch) -> None:
    values = np.arange(1, D + 1, dtype=np.int64)
    expected = pedersen.commit(values, 9, generators=gens)
    monkeypatch.setattr(mcl, "MSM_CHUNK", 7)
    monkeypatch.setattr(mcl, "INLINE_MAX", 0)
    assert pedersen.commit(values, 9, generators=gens) == expected


def test_mcl_is_on_ethereums_curve() -> None:
    doubled = mcl.g1_to_affine(mcl.g1_mul(mcl.g1_from_affine((1, 2)), 2))
    x, y = bn.normalize(bn.multiply(bn.G1, 2))
    assert doubled == (int(x), int(y))
    with pytest.raises(ValueError):
        mcl.g1_from_affine((1, 3))
    with pytest.raises(ValueError):
        mcl.g1_from_affine((FIELD_MODULUS + 1, 2))


def test_random_blinding_is_a_nonzero_scalar() -> None:
    draws = {pedersen.random_blinding() for _ in range(20)}
    assert len(draws) == 20 and all(0 < b < CURVE_ORDER for b in draws)


def _commit_in_threads(values: list[np.ndarray], blindings: list[int], gens: Generators) -> list[object]:
    """Every commitment computed on its own thread, all released at once by a barrier."""
    start = threading.Barrier(len(values))
    got: list[object] = [None] * len(values)

    def commit_after_barrier(i: int) -> None:
        start.wait()
        got[i] = pedersen.commit(values[i], blindings[i], generators=gens)

    workers = [threading.Thread(target=commit_after_barrier, args=(i,)) for i in range(len(values))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return got


def test_commitments_made_in_parallel_threads_equal_sequential_ones(gens: Generators) -> None:
    """Data owners commit from threads of one process (the demo does): every commitment must be the one a lone
    thread computes. A scalar freed while mcl still read it (the GIL is released in the call) broke this."""
    rng = np.random.default_rng(5)
    values = [rng.integers(-(2**15), 2**15, size=D) for _ in range(8)]
    blindings = [pedersen.random_blinding() for _ in range(8)]
    expected = [pedersen.commit(v, rho, generators=gens) for v, rho in zip(values, blindings, strict=True)]
    for _ in range(100):
        assert _commit_in_threads(values, blindings, gens) == expected
