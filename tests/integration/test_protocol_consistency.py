"""The consistency rule in a protocol task, on real Anvil + IPFS + PyTorch: a free-rider that sends a fresh
random vector every round is dropped from its second round on (and scores the task's missing_score), because its
update does not point the way its previous one did, and leaves slashed; honest owners, whose consecutive updates
agree, are kept. The previous updates are read back from the chain and IPFS, so an aggregator that restarts drops
the same rows; the aggregator that posted the previous round takes them from memory instead of fetching them again."""

from __future__ import annotations

import pytest
from protocol_support.market import (
    assert_dropped_at_quarter,
    assert_last_round_removes,
    build_market,
    fresh_noise,
    replan,
    restarted_aggregator,
)

from aggregator.protocol import previous_updates
from marketplace.chain.marketplace_contract import MarketplaceContract
from marketplace.ipfs import IpfsClient
from marketplace.task_files import TaskFiles

pytestmark = pytest.mark.integration

# dropped rows score min(cos, -1/4): below a sender of nothing, as the research path's spec v10
CONSISTENCY = {"filters": ({"name": "consistency", "threshold": 0.5},), "dropped_score": "capped",
               "missing_score": "-1/4"}  # fmt: skip


def test_fresh_noise_is_dropped_from_its_second_round_and_removed(  # type: ignore[no-untyped-def]
    marketplace: MarketplaceContract, session_for, ipfs: IpfsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    market = build_market(marketplace, session_for, TaskFiles(ipfs), proof="pedersen", rounds=3,
                          attacker=fresh_noise(), rules_overrides=CONSISTENCY)  # fmt: skip
    contract, task_id = market.owner, market.task_id
    attacker = contract.get_participant(task_id, market.attacker.address).index
    honest = [i for i in range(len(market.data_owners)) if i != attacker]

    market.submit_all(1)
    first = market.aggregator.aggregate_round(task_id, 1).record
    assert first is not None and all(flag & 2 for flag in first.flags)  # nobody has a previous update yet

    market.submit_all(2)
    # an aggregator started now knows nothing of round 1 but what the chain and IPFS hold: same history, same rows
    restarted = restarted_aggregator(market)
    history = previous_updates(restarted, task_id, 2, range(len(market.data_owners)), 12)
    assert sorted(history) == [str(i) for i in range(len(market.data_owners))]
    replayed = replan(market, 2, restarted)
    fetched: list[int] = []  # the rounds whose submissions the aggregator fetches, decrypts and checks
    fetch = market.aggregator.collect
    monkeypatch.setattr(market.aggregator, "collect", lambda task, at: fetched.append(at) or fetch(task, at))
    second = market.aggregator.aggregate_round(task_id, 2).record
    assert fetched == [2]  # round 1's updates come from its own posting, not from IPFS again
    assert_dropped_at_quarter(second, replayed, attacker, honest)
    assert_last_round_removes(market, 3, attacker, honest)
