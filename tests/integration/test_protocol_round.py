"""Protocol rounds on real Anvil + IPFS: commitments checked, fixed-point RFFL, Shapley pay, both proof layers."""

from __future__ import annotations

import time

import pytest
from protocol_support.market import build_market

from client.audit import audit_task
from marketplace.chain.events import RewardCredited, RoundFinalized, Slashed, Withdrawn
from marketplace.chain.marketplace_contract import MarketplaceContract, TaskStatus
from marketplace.ipfs import IpfsClient
from marketplace.task_files import TaskFiles

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("proof", "rule_version"), [("pedersen", ""), ("groth16", "rffl-v2"), ("groth16", "rffl-v1")])
def test_attacker_removed_slashed_honest_paid_by_shapley(
    marketplace: MarketplaceContract,
    session_for,
    ipfs: IpfsClient,
    proof: str,
    rule_version: str,  # type: ignore[no-untyped-def]
) -> None:
    files = TaskFiles(ipfs)
    market = build_market(marketplace, session_for, files, proof=proof, rule_version=rule_version or "rffl-v2")
    rules = files.spec(marketplace.get_task(market.task_id).spec_cid).rules
    assert rules is not None and rules.rule_version == rule_version
    task_id = market.task_id
    timings = []
    for round_ in (1, 2, 3):
        market.submit_all(round_)
        started = time.perf_counter()
        result = market.aggregator.aggregate_round(task_id, round_)
        timings.append(time.perf_counter() - started)
        assert result.record is not None and not result.rejected
        print(f"round {round_} ({proof}): {timings[-1]:.2f} s, finalize gas {result.finalize.gas_used:,}, "
              f"timings {result.timings} phis {result.record.phis} reps {result.record.reputations_after} "
              f"flags {result.record.flags} removals {result.record.removals} "
              f"contrib {result.contributions}")  # fmt: skip

    info = marketplace.get_task(task_id)
    assert info.status is TaskStatus.FINISHED and info.unsettled_rounds == 0
    attacker_index = marketplace.get_participant(task_id, market.attacker.address).index
    assert info.removed_mask == 1 << attacker_index and info.slashed_mask == 1 << attacker_index
    slashed = marketplace.events("Slashed", taskId=task_id)
    assert [e.data_owner for e in slashed if isinstance(e, Slashed)] == [market.attacker.address]
    finalized = [e for e in marketplace.events("RoundFinalized", taskId=task_id) if isinstance(e, RoundFinalized)]
    assert [e.round for e in finalized] == [1, 2, 3]
    assert all(e.contributions[attacker_index] == 0 for e in finalized)
    credits = [e for e in marketplace.events("RewardCredited", taskId=task_id) if isinstance(e, RewardCredited)]
    assert credits and all(e.data_owner != market.attacker.address for e in credits)
    for event in finalized:  # the honest are paid in proportion to their posted Shapley contributions
        paid = {c.data_owner: c for c in credits if c.round == event.round}
        for c in paid.values():
            assert c.contribution > 0

    report = audit_task(marketplace, files, task_id, market.validation)
    assert report.passed, report.failures()

    withdrawn = 0
    for member in market.data_owners:
        withdrawn += sum(e.amount for e in member.withdraw(task_id).all(Withdrawn))
    withdrawn += market.owner.withdraw(task_id).first(Withdrawn).amount
    assert withdrawn == market.terms.reward + market.stakes
    assert marketplace.held() == 0


def test_an_owner_removed_in_the_last_round_with_weight_is_slashed_at_once(
    marketplace: MarketplaceContract,
    session_for,
    ipfs: IpfsClient,  # type: ignore[no-untyped-def]
) -> None:
    """The norm filter keeps a sign-flipper (its norm is honest), so its update has weight when RFFL removes it;
    before the last round its removal waits for the next round, in a one-round task there is none."""
    files = TaskFiles(ipfs)
    market = build_market(marketplace, session_for, files, proof="pedersen", rounds=1)
    task_id = market.task_id
    attacker = marketplace.get_participant(task_id, market.attacker.address).index
    market.submit_all(1)
    result = market.aggregator.aggregate_round(task_id, 1)
    assert result.record is not None and not result.rejected
    assert result.record.weights[attacker] > 0 and result.record.reputations_after[attacker] == 0
    assert result.record.removals == 1 << attacker

    info = marketplace.get_task(task_id)
    assert info.status is TaskStatus.FINISHED and info.unsettled_rounds == 0
    assert info.removed_mask == info.slashed_mask == 1 << attacker
    credits = [e for e in marketplace.events("RewardCredited", taskId=task_id) if isinstance(e, RewardCredited)]
    assert credits and all(e.data_owner != market.attacker.address for e in credits)
    report = audit_task(marketplace, files, task_id, market.validation)
    assert report.passed, report.failures()

    withdrawn = sum(sum(e.amount for e in m.withdraw(task_id).all(Withdrawn)) for m in market.data_owners)
    withdrawn += market.owner.withdraw(task_id).first(Withdrawn).amount
    assert withdrawn == market.terms.reward + market.stakes
    assert marketplace.held() == 0
