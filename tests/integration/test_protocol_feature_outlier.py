"""The input-feature outlier rule in a protocol task, on real Anvil + IPFS + PyTorch: a data owner that stamps a
backdoor trigger (a full-intensity 2×2 block in the corner of a digit image, relabelled 0) on half its rows sends
an update whose direction and length pass for honest, but which moves the first-layer weights of corner pixels that
the honest owners' images leave blank. It is dropped every round, scores the task's missing_score, leaves and is
slashed, while honest owners are kept; a restarted aggregator plans the same rows."""

from __future__ import annotations

import numpy as np
import pytest
from protocol_support.market import (
    as_trained,
    assert_dropped_at_quarter,
    assert_last_round_removes,
    build_market,
    replan,
)

from aggregator import attacks
from aggregator.fixedpoint import ONE
from aggregator.simulation import CLIENT_TRAINING, backdoor_trigger
from marketplace.chain.marketplace_contract import MarketplaceContract
from marketplace.data import Dataset
from marketplace.ipfs import IpfsClient
from marketplace.task_files import TaskFiles

pytestmark = pytest.mark.integration

# the task's model is a logistic regression on digits: a 10 × 64 first (and only) weight matrix
FEATURE_OUTLIER = {"filters": ({"name": "feature_outlier", "inputs": 64, "units": 10},),
                   "dropped_score": "capped", "alpha": "0.8", "missing_score": "-1/4"}  # fmt: skip


def stamp_backdoor(shard: Dataset) -> Dataset:
    """Half the shard's rows, copied with the digits trigger stamped on and relabelled 0."""
    x, y = attacks.add_backdoor(shard.X, shard.y, backdoor_trigger("digits"), 0.5, np.random.default_rng(1))
    return Dataset(x, y)


def test_a_backdoor_update_is_dropped_and_its_sender_removed(  # type: ignore[no-untyped-def]
    marketplace: MarketplaceContract, session_for, ipfs: IpfsClient
) -> None:
    market = build_market(marketplace, session_for, TaskFiles(ipfs), proof="pedersen", rounds=3, dataset="digits",
                          attacker=as_trained, poisoned=stamp_backdoor, rules_overrides=FEATURE_OUTLIER,
                          training=CLIENT_TRAINING)  # fmt: skip
    contract, task_id = market.owner, market.task_id
    attacker = contract.get_participant(task_id, market.attacker.address).index
    honest = [i for i in range(len(market.data_owners)) if i != attacker]

    market.submit_all(1)
    replayed = replan(market, 1)
    first = market.aggregator.aggregate_round(task_id, 1).record
    assert_dropped_at_quarter(first, replayed, attacker, honest)

    market.submit_all(2)
    second = market.aggregator.aggregate_round(task_id, 2).record
    assert second is not None and second.flags[attacker] & 2 == 0 and second.phis[attacker] <= -ONE // 4
    assert_last_round_removes(market, 3, attacker, honest)
