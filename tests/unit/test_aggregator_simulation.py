"""The in-process simulator runs end to end and is reproducible from its seed."""

from __future__ import annotations

import pytest
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


def test_server_step_size_scales_how_far_the_model_moves() -> None:
    torch.set_num_threads(1)
    aggregation = {"rules": [{"name": "clip", "gamma": 1.0}], "reputation": "rffl", "contribution": "none"}
    base = {"dataset": "breast_cancer", "n_owners": 4, "rounds": 3, "hidden": (8,), "aggregation": aggregation}
    moved = run_simulation(SimulationConfig(**base))
    held = run_simulation(SimulationConfig(**base, server_lr=1e-9))  # the aggregate scaled to nothing
    assert len(set(held.accuracy)) == 1  # the initial model's accuracy, round after round
    assert held.final_accuracy < moved.final_accuracy - 0.3
    with pytest.raises(ValueError, match="server_lr"):
        SimulationConfig(**base, server_lr=0.0)
