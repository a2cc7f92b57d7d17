"""Rule version rffl-v3 in the product, on real Anvil + IPFS: a data owner that boosts its honest step tenfold is
dropped by the proven norm filter, scores no better than a sender of nothing, and leaves slashed; the chain's
LinkedRulesRoundVerifier accepts every round and the auditor passes them, but not a record whose norm ratio
differs from the task's. A Pedersen task that sets the same filters runs the same integers, unproven."""

from __future__ import annotations

import dataclasses
import json

import pytest
from protocol_support.market import build_market, scaled

from client.audit import audit_round, audit_task, gather
from marketplace.chain.marketplace_contract import MarketplaceContract
from marketplace.ipfs import IpfsClient
from marketplace.task_files import TaskFiles

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("proof", ["groth16", "pedersen"])
def test_scaled_update_dropped_capped_and_removed(marketplace: MarketplaceContract, session_for, ipfs: IpfsClient,
                                                  proof: str) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    unproven = {"filters": (), "filter_threshold": "0", "norm_ratio": "3"} if proof == "pedersen" else {}
    market = build_market(marketplace, session_for, TaskFiles(ipfs), proof=proof, rounds=3, attacker=scaled,
                          rule_version="rffl-v3", rules_overrides=unproven)  # fmt: skip
    contract, files, task_id = market.owner, market.files, market.task_id
    info = contract.get_task(task_id)
    raw = json.loads(files.get(info.spec_cid, 1 << 20))
    assert raw["protocol"]["rule_version"] == ("rffl-v3" if proof == "groth16" else "")
    assert raw["protocol"]["norm_ratio"] == "3" and raw["protocol"]["filter_threshold"] == "0"
    attacker = contract.get_participant(task_id, market.attacker.address).index

    reputations = []
    for round_ in (1, 2, 3):
        market.submit_all(round_)
        result = market.aggregator.aggregate_round(task_id, round_)
        record = result.record
        assert record is not None and not result.rejected
        reputations.append(record.reputations_after[attacker])
        print(f"{proof} round {round_}: flags {record.flags}, phis {record.phis}, "
              f"reputations {record.reputations_after}")  # fmt: skip
        if round_ == 1:
            assert record.flags[attacker] & 2 == 0 and record.weights[attacker] == 0  # submitted, not kept
            assert record.phis[attacker] <= 0  # capped: its honest-looking cosine does not count
            assert all(record.flags[i] & 2 for i in range(len(record.flags)) if i != attacker)
        if record.flags[attacker] & 8:
            break
    info = contract.get_task(task_id)
    assert info.removed_mask == 1 << attacker and info.slashed_mask == 1 << attacker
    assert reputations[0] < min(r for i, r in enumerate(record.reputations_before) if i != attacker)

    report = audit_task(contract, files, task_id, market.validation)
    assert report.passed, report.failures()
    proof_checks = [c for audited in report.rounds for c in audited.checks if c.name == "rules proof (Groth16)"]
    assert all("rffl-v3" in c.detail for c in proof_checks) and bool(proof_checks) == (proof == "groth16")
    spec = files.spec(info.spec_cid)
    assert spec.rules is not None
    honest = gather(contract, files, task_id, spec)[0]
    vk = json.loads(files.get(spec.rules.verifying_key_cid, 1 << 20)) if proof == "groth16" else None
    assert honest.record is not None
    loose = dataclasses.replace(honest, record=dataclasses.replace(honest.record, norm_ratio_sq=0))
    failed = {c.name for c in audit_round(loose, spec, info.terms, verifying_key=vk) if not c.passed}
    assert failed == {"rules"}  # the record claims the filter was off
