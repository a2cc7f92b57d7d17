"""A removal window on the real chain: past it the rounds prove β = 0, nobody falls under β/|R|, an owner whose
reputation reached 0 still leaves (and is slashed), and the auditor holds the aggregator to the spec's schedule."""

from __future__ import annotations

import dataclasses
import json

import pytest
from protocol_support.market import build_market

from client.audit import audit_round, audit_task, gather
from marketplace.chain.events import Slashed, Withdrawn
from marketplace.chain.marketplace_contract import MarketplaceContract
from marketplace.ipfs import IpfsClient
from marketplace.task_files import TaskFiles

pytestmark = pytest.mark.integration


def test_rounds_past_the_removal_window_prove_beta_zero_and_audit_clean(
    marketplace: MarketplaceContract,
    session_for,
    ipfs: IpfsClient,  # type: ignore[no-untyped-def]
) -> None:
    files = TaskFiles(ipfs)
    market = build_market(marketplace, session_for, files, rounds=2, rules_overrides={"removal_rounds": 0})
    task_id = market.task_id
    attacker = marketplace.get_participant(task_id, market.attacker.address).index
    records = []
    for round_ in (1, 2):
        market.submit_all(round_)
        result = market.aggregator.aggregate_round(task_id, round_)
        assert result.record is not None
        records.append(result.record)

    # round 1: the sign-flipper's reputation is clamped to 0, yet β = 0 removes nobody (proven, accepted on chain)
    assert [r.beta for r in records] == ["0", "0"]
    assert records[0].reputations_after[attacker] == 0 and records[0].removals == 0
    assert not records[0].flags[attacker] & 8 and records[0].flags[attacker] & 4
    # round 2: an owner at reputation 0 is inactive, so it leaves and is slashed whatever β is
    assert records[1].removals == 1 << attacker and not records[1].flags[attacker] & 4
    info = marketplace.get_task(task_id)
    assert info.removed_mask == 1 << attacker and info.slashed_mask == 1 << attacker
    slashed = [e for e in marketplace.events("Slashed", taskId=task_id) if isinstance(e, Slashed)]
    assert [(e.round, e.data_owner) for e in slashed] == [(2, market.attacker.address)]

    report = audit_task(marketplace, files, task_id, market.validation)
    assert report.passed, report.failures()

    # the same evidence judged under "removal in every round" (β = 1/3): the auditor refuses the rules
    spec = files.spec(info.spec_cid)
    every_round = dataclasses.replace(spec, protocol={k: v for k, v in spec.protocol.items() if k != "removal_rounds"})
    vk = json.loads(files.get(spec.rules.verifying_key_cid, 1 << 20))  # type: ignore[union-attr]
    first = gather(marketplace, files, task_id, every_round)[0]
    failed = {c.name for c in audit_round(first, every_round, info.terms, verifying_key=vk) if not c.passed}
    assert "rules" in failed

    withdrawn = sum(sum(e.amount for e in m.withdraw(task_id).all(Withdrawn)) for m in market.data_owners)
    withdrawn += market.owner.withdraw(task_id).first(Withdrawn).amount
    assert withdrawn == market.terms.reward + market.stakes and marketplace.held() == 0
