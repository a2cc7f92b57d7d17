"""The overshoot rule in a protocol task, on real Anvil + IPFS + PyTorch: a data owner that boosts its honest step
tenfold (which clipping would turn into an honest-looking update) is dropped because on the task's validation set
its full step does far worse than a shorter one along it; it scores the task's missing_score, leaves and is
slashed, while honest owners are kept. The aggregator tries each update on the validation set it fetched from
IPFS and the model the chain names, so a restarted aggregator plans the same rows."""

from __future__ import annotations

import pytest
from protocol_support.market import (
    assert_dropped_at_quarter,
    assert_last_round_removes,
    build_market,
    replan,
    scaled,
)

from aggregator.simulation import CLIENT_TRAINING
from marketplace.chain.marketplace_contract import MarketplaceContract
from marketplace.ipfs import IpfsClient
from marketplace.task_files import TaskFiles

pytestmark = pytest.mark.integration

# how the product's clients train (client/demo.py): their step ends near the best point on its ray, so a boosted
# one overshoots it. The task's model is a logistic regression: from its initial weights even ten honest steps
# still lower the validation loss (round 1 keeps the booster), from round 2 on the honest step ends near its ray's
# best point and ten of them overshoot it far (excess 0.70 and 2.3 nats against a loss of 0.05)
OVERSHOOT = {"filters": ({"name": "overshoot", "threshold": 1.5},), "dropped_score": "capped", "alpha": "0.8",
             "missing_score": "-1/4"}  # fmt: skip


def test_a_boosted_update_is_dropped_and_its_sender_removed(  # type: ignore[no-untyped-def]
    marketplace: MarketplaceContract, session_for, ipfs: IpfsClient
) -> None:
    market = build_market(marketplace, session_for, TaskFiles(ipfs), proof="pedersen", rounds=3, attacker=scaled,
                          rules_overrides=OVERSHOOT, training=CLIENT_TRAINING)  # fmt: skip
    contract, task_id = market.owner, market.task_id
    attacker = contract.get_participant(task_id, market.attacker.address).index
    honest = [i for i in range(len(market.data_owners)) if i != attacker]

    market.submit_all(1)
    first = market.aggregator.aggregate_round(task_id, 1).record
    assert first is not None and all(flag & 2 for flag in first.flags)

    market.submit_all(2)
    replayed = replan(market, 2)
    second = market.aggregator.aggregate_round(task_id, 2).record
    assert_dropped_at_quarter(second, replayed, attacker, honest)
    assert_last_round_removes(market, 3, attacker, honest)
