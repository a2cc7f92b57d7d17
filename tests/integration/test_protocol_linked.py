"""Rule version rffl-v2 in the product, on real Anvil + IPFS: the owner deploys LinkedRulesRoundVerifier, the
aggregator proves the rules, the proven cosine filter and the link seed the adapter derives, publishes the link
Σ-proof in the round record, and the auditor checks the pairing, re-derives the seed and checks the link.

The chain refuses a wrong weight and a proof bound to another (swapped) update; a proof over swapped rows that
uses the chain's own seed passes the adapter (the link's Pedersen half is a d-point MSM, checked off chain), and
there the auditor's link check is what fails.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from protocol_support.market import ProtocolMarket, build_market

from aggregator.protocol import collect, plan, post, prove
from aggregator.proving import circuit_shape, load_keys
from client.audit import audit_round, audit_task, gather
from marketplace.chain.artifacts import load_artifact
from marketplace.chain.marketplace_contract import MarketplaceContract, RoundStatus
from marketplace.errors import ContractRevert
from marketplace.ipfs import IpfsClient
from marketplace.task_files import TaskFiles
from zk.auditor_link import check_link
from zk.groth16.linked import (
    LinkedRoundProof,
    filter_decision,
    link_seed,
    link_value,
    prove_link,
    prove_linked_round,
)
from zk.groth16.rules import RoundInputs, build_witness
from zk.pedersen import aggregate_commitment, commit

pytestmark = pytest.mark.integration
LINK = "poseidon-pedersen link"
PROOF = "rules proof (Groth16)"


def _failed(checks) -> set[str]:  # type: ignore[no-untyped-def]
    return {c.name for c in checks if not c.passed}


def _with_rows(inputs: RoundInputs, q: np.ndarray, threshold: int) -> RoundInputs:
    """The round's inputs over other rows, with the kept flags the proven filter gives them."""
    moved = dataclasses.replace(inputs, q=q)
    return dataclasses.replace(moved, kept=filter_decision(moved, threshold))


@pytest.fixture
def market(marketplace: MarketplaceContract, session_for, ipfs: IpfsClient) -> ProtocolMarket:  # type: ignore[no-untyped-def]
    """A 4-owner rffl-v2 task (one sign-flipper) on the breast-cancer logistic regression (d = 62)."""
    return build_market(marketplace, session_for, TaskFiles(ipfs), proof="groth16", rounds=2)


def test_v2_rounds_accepted_on_chain_and_audited_clean(market: ProtocolMarket) -> None:
    contract, files, task_id = market.owner, market.files, market.task_id
    info = contract.get_task(task_id)
    raw = json.loads(files.get(info.spec_cid, 1 << 20))  # what auditors read: the rule version is published
    assert raw["protocol"]["rule_version"] == "rffl-v2" and raw["protocol"]["filter_threshold"] == "0"
    spec = files.spec(info.spec_cid)
    assert spec.rules is not None and spec.rules.linked and spec.rules.verifying_key_cid
    adapter = contract.session.w3.eth.contract(address=info.terms.verifier,
                                               abi=load_artifact("LinkedRulesRoundVerifier")["abi"])  # fmt: skip
    assert adapter.functions.PROOF_BYTES().call() == 320
    assert market.published.verifier is not None and "UNSAFE" in market.published.verifier.label

    for round_ in (1, 2):
        market.submit_all(round_)
        result = market.aggregator.aggregate_round(task_id, round_)
        record = result.record
        assert record is not None and record.rule_version == "rffl-v2" and not result.rejected
        print(f"rffl-v2 round {round_}: prove {result.timings['prove']:.2f} s, finalize gas "
              f"{result.finalize.gas_used:,}, flags {record.flags}, weights {record.weights}")  # fmt: skip
        assert set(record.link) == {"digest", "seed", "t", "proof"}
    attacker = contract.get_participant(task_id, market.attacker.address).index
    assert record.weights[attacker] == 0  # the sign-flipper fails the proven cosine filter (τ = 0)

    report = audit_task(contract, files, task_id, market.validation)
    assert report.passed, report.failures()
    # the chain records the spec's Γ, α, β, and the deployed verifier is the published key's
    assert [c.name for c in report.task_checks] == ["rules recorded on chain", "verifier on chain"]
    for audited in report.rounds:
        names = {c.name: c for c in audited.checks}
        assert {"aggregation", "model opening", "rules", PROOF, LINK, "contributions"} <= set(names)
        assert "rffl-v2" in names[PROOF].detail

    # tampering with the public evidence of round 1, as a hostile source of chain or IPFS data would
    honest = gather(contract, files, task_id, spec)[0]
    vk = json.loads(files.get(spec.rules.verifying_key_cid, 1 << 20))
    assert len(honest.proof) == 320 and honest.record is not None

    def audit(ev):  # type: ignore[no-untyped-def]
        return _failed(audit_round(ev, spec, info.terms, verifying_key=vk, validation=market.validation))

    assert not audit(honest)

    def with_link(**changes: object):  # type: ignore[no-untyped-def]
        link = json.loads(json.dumps(honest.record.link))  # type: ignore[union-attr]
        link["proof"].update(changes)
        return dataclasses.replace(honest, record=dataclasses.replace(honest.record, link=link))

    sigma = list(honest.record.link["proof"]["sigma"])
    sigma[3] = str(int(sigma[3]) + 1)
    assert audit(with_link(sigma=sigma)) == {LINK}  # one coordinate of the response changed
    blinding = str(int(honest.record.link["proof"]["sigma_blinding"]) + 1)
    assert audit(with_link(sigma_blinding=blinding)) == {LINK}
    assert audit(with_link(a=str(int(honest.record.link["proof"]["a"]) + 1))) == {LINK}
    no_link = dataclasses.replace(honest, record=dataclasses.replace(honest.record, link={}))
    assert audit(no_link) == {LINK}
    link_check = next(c for c in audit_round(with_link(sigma=sigma), spec, info.terms, verifying_key=vk)
                      if c.name == LINK)  # fmt: skip
    assert "link FAILED" in link_check.detail

    forged = bytearray(honest.proof)
    forged[200] ^= 1  # one bit of the Groth16 proof's C
    assert PROOF in audit(dataclasses.replace(honest, proof=bytes(forged)))
    other_t = honest.proof[:-1] + bytes([honest.proof[-1] ^ 1])  # another link evaluation t
    assert {PROOF, LINK} <= audit(dataclasses.replace(honest, proof=other_t))
    other_digest = honest.proof[:287] + bytes([honest.proof[287] ^ 1]) + honest.proof[288:]
    assert {PROOF, "rules", LINK} <= audit(dataclasses.replace(honest, proof=other_digest))


def test_chain_rejects_wrong_weight_and_a_proof_for_a_swapped_update(market: ProtocolMarket) -> None:
    agg, task_id = market.aggregator, market.task_id
    market.submit_all(1)
    planned = prove(agg, task_id, plan(agg, task_id, 1, collect(agg, task_id, 1)))
    report = planned.report
    commitments = [tuple(c) for c in report.commitments]

    def rejected(bad) -> str:  # type: ignore[no-untyped-def]
        with pytest.raises(ContractRevert) as caught:
            agg.contract.finalize_round(task_id, 1, bad)
        return caught.value.error_name

    # a wrong weight: with the model commitment left as it was (layer 1 refuses), or recomputed for the new
    # weights so layer 1 passes (the Groth16 public input hashes the weights: layer 2 refuses)
    weights = list(report.weights)
    weights[0] += 1
    assert rejected(dataclasses.replace(report, weights=tuple(weights))) == "ProofRejected"
    model = aggregate_commitment(commitments, weights)  # type: ignore[arg-type]
    assert rejected(dataclasses.replace(report, weights=tuple(weights), model_commitment=model)) == "ProofRejected"

    # a swapped update: the rules proven on another vector for owner 0 (an aggregator hiding what it aggregated),
    # under the commitment that vector would have; the chain holds owner 0's real commitment, so the adapter's
    # seed differs from the proof's and the round is refused
    rules = agg.task(task_id)[1].rules
    assert rules is not None
    shape = circuit_shape(len(commitments), planned.inputs.q.shape[1], rules)
    keys = load_keys(shape, agg.key_cache, "rffl-v2")
    q = np.array(planned.inputs.q, copy=True)
    q[0] = q[1]
    swapped_inputs = _with_rows(planned.inputs, q, rules.filter_threshold_fp)
    swapped = [commit(q[0], 12345, tag=rules.generator_tag), *commitments[1:]]
    result = prove_linked_round(keys, swapped_inputs, swapped, report.model_commitment, rules.filter_threshold_fp)
    if list(result.witness.linked.weights) == list(report.weights):
        assert rejected(dataclasses.replace(report, proof=result.proof.to_bytes())) == "ProofRejected"
    forged_weights = list(result.witness.linked.weights)
    forged_model = aggregate_commitment(commitments, forged_weights)  # type: ignore[arg-type]
    forged = dataclasses.replace(report, weights=tuple(forged_weights), model_commitment=forged_model,
                                 proof=result.proof.to_bytes())  # fmt: skip
    assert rejected(forged) == "ProofRejected"

    # the honest report still goes through, and the round audits clean
    assert agg.contract.get_round(task_id, 1).status is RoundStatus.OPEN
    post(agg, task_id, 1, planned)
    audit = audit_task(market.owner, market.files, task_id, market.validation)
    assert audit.passed, audit.failures()


def test_swapped_rows_under_the_chain_seed_fail_the_link(market: ProtocolMarket) -> None:
    """The gap the chain cannot close alone: rules proven on rows that are not the committed updates, with the
    seed derived from the real commitments. The adapter accepts the Groth16 proof; no link proof exists for its t,
    so every auditor's link check fails (and the honest aggregator's prover refuses to make one)."""
    agg, task_id = market.aggregator, market.task_id
    market.submit_all(1)
    planned = plan(agg, task_id, 1, collect(agg, task_id, 1))
    rules = agg.task(task_id)[1].rules
    assert rules is not None
    report = planned.report
    commitments = [tuple(int(x) for x in c) for c in report.commitments]
    q = np.array(planned.inputs.q, copy=True)
    q[[0, 1]] = q[[1, 0]]  # owners 0 and 1 swapped in what the rules run on
    inputs = _with_rows(planned.inputs, q, rules.filter_threshold_fp)
    shape = circuit_shape(len(commitments), q.shape[1], rules)
    keys = load_keys(shape, agg.key_cache, "rffl-v2")
    weights = build_witness(shape, inputs).statement.weights
    model = aggregate_commitment(commitments, weights)  # type: ignore[arg-type]  # layer 1 holds for these weights
    result = prove_linked_round(keys, inputs, commitments, model, rules.filter_threshold_fp)  # type: ignore[arg-type]
    info = agg.contract.get_task(task_id)
    adapter = agg.contract.session.w3.eth.contract(address=info.terms.verifier,
                                                   abi=load_artifact("LinkedRulesRoundVerifier")["abi"])  # fmt: skip
    proof = result.proof
    accepted = adapter.functions.verifyRound([list(c) for c in commitments], weights, list(model),
                                             proof.to_bytes()).call({"gas": 2_000_000})  # fmt: skip
    assert accepted  # both layers hold: Σ W C = model, and the Groth16 proof for the chain's seed
    seed = link_seed(commitments, model, proof.digest)  # type: ignore[arg-type]
    assert seed == result.witness.linked.seed
    submitted = list(inputs.submitted)
    real = list(planned.inputs.q)
    blindings = [planned.collected.accepted[i].header.blinding for i in range(len(commitments))]
    with pytest.raises(ValueError, match="mismatch"):
        prove_link(real, blindings, commitments, submitted, seed, proof.t, tag=rules.generator_tag)  # type: ignore[arg-type]
    t_real = link_value(np.asarray(real), submitted, seed)
    assert t_real != proof.t
    best = prove_link(real, blindings, commitments, submitted, seed, t_real, tag=rules.generator_tag)  # type: ignore[arg-type]
    check = check_link(commitments, submitted, seed, proof.t, best, tag=rules.generator_tag)  # type: ignore[arg-type]
    assert not check.passed and "FAILED" in check.detail
    assert LinkedRoundProof.from_bytes(proof.to_bytes()).t == proof.t
