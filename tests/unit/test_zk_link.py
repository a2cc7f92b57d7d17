"""Rule version rffl-v2: the Poseidon ↔ Pedersen link. An owner (or aggregator) who puts different vectors under
its two commitments is caught: the honest prover refuses, a forged link proof fails the mcl and py_ecc checks,
and a Groth16 proof for the Pedersen-side evaluation does not exist (its t differs)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from zk.auditor_link import check_link
from zk.curve import CURVE_ORDER
from zk.groth16.keys import RULES_V2, setup_keys
from zk.groth16.linked import (
    LinkedRoundProof,
    LinkProof,
    link_seed,
    link_value,
    prove_link,
    prove_linked_round,
    verify_link,
    verify_linked,
)
from zk.groth16.rules import CircuitShape, build_witness
from zk.groth16.sample import sample_round
from zk.pedersen import aggregate_commitment, commit, random_blinding

SHAPE = CircuitShape(3, 16)


@pytest.fixture(scope="module")
def round_v2():  # type: ignore[no-untyped-def]
    keys = setup_keys(SHAPE, spec=RULES_V2)  # cached on disk after the first run
    rnd = sample_round(SHAPE)
    blindings = [random_blinding() for _ in range(SHAPE.n)]
    commitments = [commit(row, b) for row, b in zip(rnd.q, blindings, strict=True)]
    model = aggregate_commitment(commitments, build_witness(SHAPE, rnd).statement.weights)
    result = prove_linked_round(keys, rnd, commitments, model)
    return keys, rnd, blindings, commitments, model, result


def test_honest_round_links(round_v2) -> None:  # type: ignore[no-untyped-def]
    keys, rnd, blindings, commitments, _, result = round_v2
    ls = result.witness.linked
    proof = prove_link(list(rnd.q), blindings, commitments, rnd.submitted, ls.seed, ls.t)
    assert verify_link(commitments, rnd.submitted, ls.seed, ls.t, SHAPE.d, proof)
    assert check_link(commitments, rnd.submitted, ls.seed, ls.t, proof).passed
    assert verify_linked(keys, result.proof, ls.weights, ls.seed)
    assert LinkedRoundProof.from_bytes(result.proof.to_bytes()) == dataclasses.replace(result.proof, label="")
    assert LinkProof.from_json(proof.to_json()) == proof


def test_owner_with_two_vectors_is_caught(round_v2) -> None:  # type: ignore[no-untyped-def]
    _, rnd, blindings, commitments, model, result = round_v2
    ls = result.witness.linked
    pedersen_side = np.array(rnd.q, copy=True)
    pedersen_side[1, 5] += 1  # owner 1's Pedersen commitment holds another vector than its Poseidon one
    forged = list(commitments)
    forged[1] = commit(pedersen_side[1], blindings[1])
    seed = link_seed(forged, model, ls.digest)
    t_circuit = link_value(rnd.q, rnd.submitted, seed)
    # an honest aggregator's prover notices the mismatch
    with pytest.raises(ValueError, match="mismatch"):
        prove_link(list(pedersen_side), blindings, forged, rnd.submitted, seed, t_circuit)
    # a colluding aggregator can prove the Pedersen side's own evaluation ...
    t_pedersen = link_value(pedersen_side, rnd.submitted, seed)
    assert t_pedersen != t_circuit
    honest_pedersen = prove_link(list(pedersen_side), blindings, forged, rnd.submitted, seed, t_pedersen)
    assert verify_link(forged, rnd.submitted, seed, t_pedersen, SHAPE.d, honest_pedersen)
    # ... but the rules proof binds t_circuit, and reusing its Σ-proof for t_circuit fails both checkers
    assert not verify_link(forged, rnd.submitted, seed, t_circuit, SHAPE.d, honest_pedersen)
    assert not check_link(forged, rnd.submitted, seed, t_circuit, honest_pedersen).passed


def test_forged_link_proof_from_circuit_vectors_fails(round_v2) -> None:  # type: ignore[no-untyped-def]
    _, rnd, blindings, commitments, model, result = round_v2
    ls = result.witness.linked
    other = np.array(rnd.q, copy=True)
    other[2, 0] -= 3
    forged = list(commitments)
    forged[2] = commit(other[2], blindings[2])
    seed = link_seed(forged, model, ls.digest)
    t = link_value(rnd.q, rnd.submitted, seed)
    # the cheater runs the Σ-protocol with the circuit's vectors against commitments that hold others
    proof = _sigma_without_check(list(rnd.q), blindings, forged, rnd.submitted, seed, t)
    assert not verify_link(forged, rnd.submitted, seed, t, SHAPE.d, proof)
    audit = check_link(forged, rnd.submitted, seed, t, proof)
    assert not audit.passed and "does not open" in audit.detail


def test_seed_depends_on_every_commitment(round_v2) -> None:  # type: ignore[no-untyped-def]
    _, _, _, commitments, model, result = round_v2
    digest = result.proof.digest
    base = link_seed(commitments, model, digest)
    assert link_seed(commitments[::-1], model, digest) != base
    assert link_seed(commitments, commitments[0], digest) != base
    assert link_seed(commitments, model, (digest + 1) % CURVE_ORDER) != base


def test_tampered_link_proof_rejected(round_v2) -> None:  # type: ignore[no-untyped-def]
    _, rnd, blindings, commitments, _, result = round_v2
    ls = result.witness.linked
    proof = prove_link(list(rnd.q), blindings, commitments, rnd.submitted, ls.seed, ls.t)
    sigma = list(proof.sigma)
    sigma[3] = (sigma[3] + 1) % CURVE_ORDER
    for bad in (
        dataclasses.replace(proof, sigma=sigma),
        dataclasses.replace(proof, sigma_blinding=proof.sigma_blinding + 1),
    ):
        assert not verify_link(commitments, rnd.submitted, ls.seed, ls.t, SHAPE.d, bad)
    assert not check_link(commitments, rnd.submitted, ls.seed, ls.t, dataclasses.replace(proof, sigma=sigma)).passed


def _sigma_without_check(updates, blindings, commitments, submitted, seed, t) -> LinkProof:  # type: ignore[no-untyped-def]
    """prove_link's arithmetic without its consistency check: what a cheater would run."""
    import secrets

    from zk.groth16.linked import _fs_challenge, challenge_vectors, combined_commitment

    d = len(updates[0])
    e, z = challenge_vectors(seed, len(updates), d, submitted)
    v = [sum(ei * int(row[j]) for ei, row in zip(e, updates, strict=True)) % CURVE_ORDER for j in range(d)]
    rho = sum(ei * b for ei, b in zip(e, blindings, strict=True)) % CURVE_ORDER
    k = [secrets.randbelow(CURVE_ORDER) for _ in range(d)]
    r_k = secrets.randbelow(CURVE_ORDER)
    a_point = commit(np.array(k, dtype=object), r_k)
    a_value = sum(x * y for x, y in zip(z, k, strict=True)) % CURVE_ORDER
    c = _fs_challenge(seed, t, combined_commitment(commitments, e), a_point, a_value)
    return LinkProof(
        a_point, a_value, [(x + c * y) % CURVE_ORDER for x, y in zip(k, v, strict=True)], (r_k + c * rho) % CURVE_ORDER
    )


def test_filter_decision_is_proven(round_v2, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from aggregator.fixedpoint import ONE
    from zk.groth16 import linked
    from zk.groth16.prover import ProofRejected
    from zk.groth16.rules import RuleMismatch

    keys, rnd, _, commitments, _, _ = round_v2
    tau = ONE // 4
    kept = linked.filter_decision(rnd, tau)
    assert kept == [True, True, False]  # the noisy free-rider is filtered out
    filtered = dataclasses.replace(rnd, kept=kept)
    weights = build_witness(SHAPE, filtered).statement.weights
    assert weights[-1] == 0
    model = aggregate_commitment(commitments, weights)
    result = prove_linked_round(keys, filtered, commitments, model, tau)
    assert result.witness.linked.rule.threshold == tau
    # an aggregator claiming other kept flags: refused in Python, and unprovable in the circuit
    with pytest.raises(RuleMismatch):
        prove_linked_round(keys, rnd, commitments, aggregate_commitment(commitments, weights), tau)
    monkeypatch.setattr(linked, "filter_decision", lambda r, t: [bool(k) for k in r.kept])
    full = build_witness(SHAPE, rnd).statement.weights
    with pytest.raises(ProofRejected):
        prove_linked_round(keys, rnd, commitments, aggregate_commitment(commitments, full), tau)


def test_projection_link_binds_projected_rows_to_full_commitments() -> None:
    from zk.groth16.projection import project, projection_matrix, projection_seed, transpose_times

    rng = np.random.default_rng(7)
    n, d, m = 3, 200, 16
    u = rng.integers(-(2**15), 2**15, size=(n, d))
    blindings = [random_blinding() for _ in range(n)]
    commitments = [commit(row, b) for row, b in zip(u, blindings, strict=True)]
    matrix = projection_matrix(projection_seed(commitments), m, d)
    assert matrix.shape == (m, d) and set(np.unique(matrix)) <= {-1, 0, 1}
    z = [pow(5, k + 1, CURVE_ORDER) for k in range(m)]
    assert transpose_times(matrix, z) == [
        sum(int(matrix[k, j]) * z[k] for k in range(m)) % CURVE_ORDER for j in range(d)
    ]
    y = project(u, matrix)
    submitted = [True] * n
    seed = link_seed(commitments, commitments[0], 12345)
    t = link_value(y, submitted, seed)
    proof = prove_link(list(u), blindings, commitments, submitted, seed, t, projection=matrix)
    assert verify_link(commitments, submitted, seed, t, d, proof, projection=matrix)
    assert check_link(commitments, submitted, seed, t, proof, projection=matrix).passed
    bad = np.array(y, copy=True)
    bad[1, 3] += 1  # a projected row that is not P·u_1
    with pytest.raises(ValueError, match="mismatch"):
        prove_link(
            list(u), blindings, commitments, submitted, seed, link_value(bad, submitted, seed), projection=matrix
        )
    assert not verify_link(commitments, submitted, seed, link_value(bad, submitted, seed), d, proof, projection=matrix)
