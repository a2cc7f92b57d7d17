"""Rule version rffl-v4 in the product, on real Anvil + IPFS + PyTorch: a data owner that joins, submits once and
then goes silent scores the task's missing score (-1/4) in every round it sends nothing, so it leaves and is slashed
by round 3, where rffl-v3's score of 0 would still keep it. The chain's LinkedRulesRoundVerifier accepts every
round; the auditor passes them, but not against a spec whose missing score differs (the digest binds it)."""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction

import pytest
from protocol_support.market import build_market

from aggregator import fixedpoint
from aggregator.fixedpoint import ONE
from client.audit import audit_round, audit_task, gather
from marketplace.chain.anvil import advance_time
from marketplace.chain.marketplace_contract import MarketplaceContract
from marketplace.ipfs import IpfsClient
from marketplace.task_files import TaskFiles

pytestmark = pytest.mark.integration

RULES = {"alpha": "0.8", "missing_score": "-1/4"}


def _still_in(records: list, silent: int, score: int) -> bool:  # type: ignore[type-arg]
    """Replay the recorded rounds' reputations with the silent owner scored `score`: is it still in at the end?"""
    reputations = list(records[0].reputations_before)
    for record in records:
        active = [bool(flag & 4) for flag in record.flags]
        phis = [score if i == silent else p for i, p in enumerate(record.phis)]
        stepped = fixedpoint.normalise([fixedpoint.reputation_step(r, p, record.alpha_fp) if a else 0
                                        for r, p, a in zip(reputations, phis, active, strict=True)])  # fmt: skip
        if fixedpoint.below_removal_threshold(stepped[silent], sum(active), Fraction(record.beta)):
            return False
        reputations = stepped
    return True


def test_a_silent_owner_scores_the_missing_score_and_leaves(  # type: ignore[no-untyped-def]
    marketplace: MarketplaceContract, session_for, ipfs: IpfsClient
) -> None:
    market = build_market(marketplace, session_for, TaskFiles(ipfs), proof="groth16", honest=4, attacker=None,
                          rounds=3, rule_version="rffl-v4", rules_overrides=RULES)  # fmt: skip
    contract, files, task_id = market.owner, market.files, market.task_id
    info = contract.get_task(task_id)
    raw = json.loads(files.get(info.spec_cid, 1 << 20))
    assert raw["protocol"]["rule_version"] == "rffl-v4" and raw["protocol"]["missing_score"] == "-1/4"
    quiet = market.data_owners[-1]
    silent = contract.get_participant(task_id, quiet.address).index

    market.submit_all(1)
    first = market.aggregator.aggregate_round(task_id, 1).record
    assert first is not None and all(flag & 2 for flag in first.flags)
    records = []
    for round_ in (2, 3):
        for member in market.data_owners[:-1]:
            member.train_and_submit(task_id, round_)
        advance_time(contract.session.w3, market.terms.round_duration + 1)  # the silent owner's deadline passes
        result = market.aggregator.aggregate_round(task_id, round_)
        record = result.record
        assert record is not None and not result.rejected
        print(f"round {round_}: flags {record.flags}, phis {record.phis}, reputations {record.reputations_after}")
        assert record.flags[silent] & 1 == 0 and record.phis[silent] == -ONE // 4
        assert all(record.phis[i] > 0 for i in range(len(record.flags)) if i != silent)
        records.append(record)
        if record.flags[silent] & 8:
            break
    info = contract.get_task(task_id)
    assert info.removed_mask == 1 << silent and info.slashed_mask == 1 << silent
    assert not _still_in(records, silent, -ONE // 4)  # the replay reproduces the chain's removal
    assert _still_in(records, silent, 0)  # rffl-v3's proven score of 0 would have kept it

    report = audit_task(contract, files, task_id, market.validation)
    assert report.passed, report.failures()
    proof_checks = [c for audited in report.rounds for c in audited.checks if c.name == "rules proof (Groth16)"]
    assert proof_checks and all("rffl-v4" in c.detail for c in proof_checks)
    spec = files.spec(info.spec_cid)
    assert spec.rules is not None
    evidence = gather(contract, files, task_id, spec)[1]
    vk = json.loads(files.get(spec.rules.verifying_key_cid, 1 << 20))
    assert all(c.passed for c in audit_round(evidence, spec, info.terms, verifying_key=vk))
    lenient = dataclasses.replace(spec, protocol={**spec.protocol, "missing_score": "0"})
    failed = {c.name for c in audit_round(evidence, lenient, info.terms, verifying_key=vk) if not c.passed}
    assert failed == {"rules"}  # the proof's digest carries M = -1/4, not the lenient spec's 0
