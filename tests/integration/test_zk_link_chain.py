"""Rule version rffl-v2 on Anvil: LinkedRulesRoundVerifier derives the link seed from the Pedersen commitments,
so a proof made for other commitments (an owner who swapped vectors) or another t is rejected."""

from __future__ import annotations

import numpy as np
import pytest

from marketplace.chain.session import ChainSession
from zk.groth16.keys import RULES_V2, setup_keys
from zk.groth16.linked import LinkedRoundProof, link_seed, prove_linked_round, public_hash_v2
from zk.groth16.rules import CircuitShape, build_witness
from zk.groth16.sample import sample_round
from zk.groth16.solidity import deploy
from zk.onchain import PedersenVerifier
from zk.pedersen import aggregate_commitment, commit, random_blinding

pytestmark = pytest.mark.integration
SHAPE = CircuitShape(3, 16)
GAS_TARGET = 300_000


@pytest.fixture(scope="module")
def setup(w3, accounts):  # type: ignore[no-untyped-def]
    session = ChainSession(w3, accounts[6])
    keys = setup_keys(SHAPE, spec=RULES_V2)
    rnd = sample_round(SHAPE)
    blindings = [random_blinding() for _ in range(SHAPE.n)]
    commitments = [commit(row, b) for row, b in zip(rnd.q, blindings, strict=True)]
    model = aggregate_commitment(commitments, build_witness(SHAPE, rnd).statement.weights)
    result = prove_linked_round(keys, rnd, commitments, model)
    pedersen, _ = PedersenVerifier.deploy(session)
    chain = deploy(session, keys, pedersen.address)
    return chain, rnd, blindings, commitments, model, result


def test_seed_and_public_input_match_python(setup) -> None:  # type: ignore[no-untyped-def]
    chain, _, _, commitments, model, result = setup
    ls = result.witness.linked
    seed = chain.adapter.functions.linkSeed([list(c) for c in commitments], list(model), ls.digest).call()
    assert seed == ls.seed == link_seed(commitments, model, ls.digest)
    on_chain = chain.adapter.functions.publicInput(ls.weights, ls.digest, ls.seed, ls.t).call()
    assert on_chain == public_hash_v2(ls.weights, ls.digest, ls.seed, ls.t) == ls.public_hash


def test_linked_round_accepted_within_gas_target(setup) -> None:  # type: ignore[no-untyped-def]
    chain, _, _, commitments, model, result = setup
    ok, gas = chain.verify_round(commitments, result.witness.linked.weights, model, result.proof.to_bytes())
    assert ok and gas < GAS_TARGET


def test_swapped_vector_or_wrong_t_rejected_on_chain(setup) -> None:  # type: ignore[no-untyped-def]
    chain, rnd, blindings, commitments, _, result = setup
    weights = result.witness.linked.weights
    other = np.array(rnd.q, copy=True)
    other[0, 1] += 1
    swapped = [commit(other[0], blindings[0]), *commitments[1:]]
    swapped_model = aggregate_commitment(swapped, weights)  # layer 1 alone would accept this round
    assert chain.verify_round(swapped, weights, swapped_model, result.proof.to_bytes())[0] is False
    proof = result.proof
    wrong_t = LinkedRoundProof(proof.proof, proof.digest, (proof.t + 1), proof.label)
    ok, _ = chain.verify_round(commitments, weights, aggregate_commitment(commitments, weights), wrong_t.to_bytes())
    assert not ok
