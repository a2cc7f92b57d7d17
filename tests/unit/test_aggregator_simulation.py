"""The in-process simulator runs end to end and is reproducible from its seed."""

from __future__ import annotations

import torch

from aggregator.simulation import SimulationConfig, run_simulation


def test_short_simulation_is_deterministic_and_removes_sign_flippers() -> None:
    torch.set_num_threads(1)
    config = SimulationConfig(
        dataset="breast_cancer",
        n_owners=5,
        rounds=4,
        attack="sign_flip",
        attacker_fraction=0.2,
        hidden=(8,),
        aggregation={"rules": [{"name": "clip", "gamma": 1.0}], "reputation": "rffl", "contribution": "shapley"},
    )
    first = run_simulation(config)
    second = run_simulation(config)
    assert first.accuracy == second.accuracy
    assert first.payout == second.payout
    assert len(first.attackers) == 1 and first.attackers[0] in first.removed_round
    assert abs(sum(first.payout["shapley"].values()) - 1.0) < 1e-9
    assert first.final_accuracy > 0.8
