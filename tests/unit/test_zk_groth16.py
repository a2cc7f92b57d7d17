"""Layer 2 (Groth16 rules proof): Poseidon, packing, witness agreement with aggregator.fixedpoint, prove/verify,
the independent py_ecc check, and rejection of tampered proofs, weights, digests and rule violations."""

from __future__ import annotations

import dataclasses

import groth16py
import numpy as np
import pytest

from aggregator.fixedpoint import ONE
from zk.auditor_groth16 import check_rules_proof
from zk.groth16.keys import UNSAFE_LABEL, setup_keys
from zk.groth16.poseidon import chain_hash, poseidon
from zk.groth16.prover import ProofRejected, RoundProof, prove_round, verify_round, verify_statement
from zk.groth16.rules import CircuitShape, RuleMismatch, build_witness, pack, public_hash
from zk.groth16.sample import sample_round
from zk.groth16.solidity import verifying_key_json

SHAPE = CircuitShape(3, 16)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):  # type: ignore[no-untyped-def]
    return setup_keys(SHAPE)  # cached on disk after the first run (~7 s setup)


@pytest.fixture(scope="module")
def proved(keys):  # type: ignore[no-untyped-def]
    return prove_round(keys, sample_round(SHAPE))


def test_poseidon_known_answer() -> None:
    # circomlib's test vector for Poseidon([1, 2])
    assert poseidon([1, 2]) == 7853200120776062878684798364095072458815029376092732009249414926327459813530


def test_chain_hash_depends_on_every_element_and_head() -> None:
    base = chain_hash(1, list(range(20)))
    assert chain_hash(2, list(range(20))) != base
    assert chain_hash(1, [*range(19), 99]) != base


def test_pack_is_injective_and_refuses_out_of_range() -> None:
    assert pack([0, -1, 1], 8) != pack([-1, 0, 1], 8)
    assert pack([-256, 255], 8)[0] == 0 + (511 << 40)
    with pytest.raises(ValueError):
        pack([256], 8)


def test_witness_agrees_with_fixedpoint_and_flags_removal() -> None:
    rnd = sample_round(SHAPE)
    w = build_witness(SHAPE, rnd)
    assert w.statement.weights == w.outcome.weights
    assert w.statement.reputations_after == w.outcome.reputations
    assert w.outcome.clip_factors[0] < ONE  # the heavy update was clipped
    assert w.outcome.phis[-1] < w.outcome.phis[1]  # the free-rider scores lowest


def test_witness_refuses_values_outside_the_circuit_range() -> None:
    rnd = sample_round(SHAPE)
    q = rnd.q.copy()
    q[0, 0] = 1 << SHAPE.value_bits
    with pytest.raises(ValueError):
        build_witness(SHAPE, dataclasses.replace(rnd, q=q))


def test_prove_verify_and_independent_check(keys, proved) -> None:  # type: ignore[no-untyped-def]
    st = proved.witness.statement
    assert keys.label == UNSAFE_LABEL and proved.proof.label == UNSAFE_LABEL
    assert len(proved.proof.to_bytes()) == 288
    assert verify_round(keys, proved.proof, st.weights)
    assert verify_statement(keys, proved.proof, st)
    check = check_rules_proof(verifying_key_json(keys), proved.proof.to_bytes(), st.weights, label=keys.label)
    assert check.passed, str(check)
    assert "UNSAFE" in str(check)
    assert RoundProof.from_bytes(proved.proof.to_bytes()).digest == st.digest


def test_tampering_is_rejected(keys, proved) -> None:  # type: ignore[no-untyped-def]
    st = proved.witness.statement
    vk = verifying_key_json(keys)
    good = proved.proof.to_bytes()
    for index in (5, 100, 200):  # in A, B and C
        bad = bytearray(good)
        bad[index] ^= 1
        assert not check_rules_proof(vk, bytes(bad), st.weights).passed
        assert not verify_round(keys, dataclasses.replace(proved.proof, proof=bytes(bad[:256])), st.weights)
    other_weights = [st.weights[0] + 1, *st.weights[1:]]
    assert not check_rules_proof(vk, good, other_weights).passed
    assert not verify_round(keys, proved.proof, other_weights)
    other_digest = dataclasses.replace(proved.proof, digest=st.digest + 1)
    assert not verify_round(keys, other_digest, st.weights)
    changed = dataclasses.replace(st, reputations_after=[*st.reputations_after[:-1], st.reputations_after[-1] + 1])
    assert not verify_statement(keys, proved.proof, changed)


def test_a_witness_that_breaks_a_rule_cannot_be_proven(keys) -> None:  # type: ignore[no-untyped-def]
    w = build_witness(SHAPE, sample_round(SHAPE, seed=1))
    inputs = dict(w.inputs)
    # claim a larger weight for owner 0 and restate the public hash accordingly
    inputs["wQ"] = [inputs["wQ"][0] + 1, *inputs["wQ"][1:]]
    weights = [w.statement.weights[0] + 1, *w.statement.weights[1:]]
    inputs["publicHash"] = public_hash(weights, w.statement.digest)
    proof = bytes(groth16py.prove(keys.pk, inputs)) if _prove_ok(keys, inputs) else b"\0" * 256
    assert not groth16py.Verifier(keys.vk).verify(proof, [inputs["publicHash"]])


def _prove_ok(keys, inputs) -> bool:  # type: ignore[no-untyped-def]
    try:
        groth16py.prove(keys.pk, inputs)
    except Exception:  # the witness calculator may refuse outright: equally a rejection
        return False
    return True


def test_hint_mismatch_is_a_bug_not_a_proof(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from zk.groth16 import rules

    real = rules.fixedpoint.rffl_round

    def skewed(*args, **kwargs):  # type: ignore[no-untyped-def]
        outcome = real(*args, **kwargs)
        return dataclasses.replace(outcome, weights=[w + 1 for w in outcome.weights])

    monkeypatch.setattr(rules.fixedpoint, "rffl_round", skewed)
    with pytest.raises(RuleMismatch):
        build_witness(SHAPE, sample_round(SHAPE))


def test_prove_round_raises_rather_than_return_a_bad_proof(keys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from zk.groth16 import prover

    monkeypatch.setattr(prover, "prove_inputs", lambda pk, directory, inputs, accept: b"\x01" * 256)
    with pytest.raises(ProofRejected):
        prove_round(keys, sample_round(SHAPE))


def test_sample_round_rows_are_integer_arrays() -> None:
    rnd = sample_round(SHAPE)
    assert rnd.q.dtype == np.int64 and rnd.q.shape == (SHAPE.n, SHAPE.d)
