"""Both proof layers on Anvil: the generated Groth16 verifier and RulesRoundVerifier (IRoundVerifier)."""

from __future__ import annotations

import pytest

from marketplace.chain.session import ChainSession
from zk.groth16.keys import setup_keys
from zk.groth16.prover import prove_round
from zk.groth16.rules import CircuitShape
from zk.groth16.sample import sample_round
from zk.groth16.solidity import deploy
from zk.onchain import PedersenVerifier
from zk.pedersen import aggregate_commitment, commit, random_blinding

pytestmark = pytest.mark.integration
SHAPE = CircuitShape(3, 16)
GAS_TARGET = 300_000


@pytest.fixture(scope="module")
def setup(w3, accounts):  # type: ignore[no-untyped-def]
    session = ChainSession(w3, accounts[7])
    keys = setup_keys(SHAPE)
    rnd = sample_round(SHAPE)
    result = prove_round(keys, rnd)
    commitments = [commit(row, random_blinding()) for row in rnd.q]
    model = aggregate_commitment(commitments, result.witness.statement.weights)
    pedersen, _ = PedersenVerifier.deploy(session)
    chain = deploy(session, keys, pedersen.address)
    return chain, result, commitments, model


def test_public_input_hash_matches_python(setup) -> None:  # type: ignore[no-untyped-def]
    chain, result, _, _ = setup
    st = result.witness.statement
    assert chain.public_input(st.weights, st.digest) == st.public_hash


def test_verifier_accepts_and_gas_within_target(setup) -> None:  # type: ignore[no-untyped-def]
    chain, result, commitments, model = setup
    st = result.witness.statement
    ok, gas = chain.verify_proof(result.proof, st.public_hash)
    assert ok and gas < GAS_TARGET
    ok, gas = chain.verify_round(commitments, st.weights, model, result.proof.to_bytes())
    assert ok and gas < GAS_TARGET


def test_chain_rejects_tampering(setup) -> None:  # type: ignore[no-untyped-def]
    chain, result, commitments, model = setup
    st = result.witness.statement
    good = result.proof.to_bytes()
    bad_proof = bytearray(good)
    bad_proof[200] ^= 1  # C's x coordinate: off the curve or a different point
    bad_digest = good[:-1] + bytes([good[-1] ^ 1])
    other = [st.weights[0], st.weights[1] + 1, st.weights[2]]
    for weights, proof in ((st.weights, bytes(bad_digest)), (other, good)):
        ok, _ = chain.verify_round(commitments, weights, model, proof)
        assert not ok
    try:  # the generated verifier either returns false or reverts (point off the curve)
        ok, _ = chain.verify_round(commitments, st.weights, model, bytes(bad_proof))
    except Exception:
        ok = False
    assert not ok
    # layer 1 also guards: a model commitment for other weights fails even with a valid rules proof
    wrong_model = aggregate_commitment(commitments, other)
    ok, _ = chain.verify_round(commitments, st.weights, wrong_model, good)
    assert not ok
